// Links libctor_lib.so (see ctor_lib.c), whose constructor leaks before heapledger starts, and
// prints the string that library keeps; with "quick", ends by quick_exit(0); with "steps", first
// holds 1 MiB more every 15 ms, five times, then frees it all (a timeline of a dozen points).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hl_sink.h"

static void steps(void) {
  void* held[5];
  const struct timespec pause = {0, 15 * 1000 * 1000};
  for (int i = 0; i < 5; ++i) {
    held[i] = malloc(1 << 20);
    memset(held[i], 1, 1 << 20);
    hl_sink(held[i]);
    nanosleep(&pause, NULL);
  }
  for (int i = 0; i < 5; ++i) {
    free(held[i]);
    nanosleep(&pause, NULL);
  }
}

const char* ctor_lib_kept(void);

int main(int argc, char** argv) {
  puts(ctor_lib_kept());
  if (argc > 1 && strcmp(argv[1], "steps") == 0) steps();
  if (argc > 1 && strcmp(argv[1], "quick") == 0) {
    fflush(stdout);
    quick_exit(0);
  }
  return 0;
}
