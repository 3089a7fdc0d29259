// Links libctor_lib.so (see ctor_lib.c), whose constructor leaks before heapledger starts, and
// prints the string that library keeps.
#include <stdio.h>

const char* ctor_lib_kept(void);

int main(void) {
  puts(ctor_lib_kept());
  return 0;
}
