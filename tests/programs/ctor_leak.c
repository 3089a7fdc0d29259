// Links libctor_lib.so (see ctor_lib.c), whose constructor leaks before heapledger starts, and
// prints the string that library keeps; with "quick", ends by quick_exit(0).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char* ctor_lib_kept(void);

int main(int argc, char** argv) {
  puts(ctor_lib_kept());
  if (argc > 1 && strcmp(argv[1], "quick") == 0) {
    fflush(stdout);
    quick_exit(0);
  }
  return 0;
}
