// The only pointers to a leaked block are left in a large block the program freed. The pools
// keep a freed large mapping for reuse (shim/span_cache.h), so its old contents stay in memory:
// in the kept mapping, or in the slack of the next block that takes it. Either way they must not
// make the leak look reachable.
//   stale_in_freed_large          free the block and exit (the mapping stays kept)
//   stale_in_freed_large reuse    then allocate a quarter of its size, live until exit, writing
//                                 only that quarter: "reused" on stderr if it got the same mapping
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

enum { kBig = 256 * 1024 };

void* volatile g_live;  // a live block: a root for what it holds, not for its slack

__attribute__((noinline)) static void* lose_in_big(void) {
  void** big = malloc(kBig);
  memset(big, 0, kBig);
  void* leaked = malloc(48);
  memset(leaked, 0x5a, 48);
  big[100] = leaked;              // first page
  big[kBig / sizeof *big - 1] = leaked;  // last page
  hl_sink(leaked);
  return big;
}

__attribute__((noinline)) static void scrub_stack(void) {
  volatile char junk[8192];
  memset((char*)junk, 0, sizeof junk);
}

int main(int argc, char** argv) {
  void* big = lose_in_big();
  free(big);
  if (argc > 1 && strcmp(argv[1], "reuse") == 0) {
    void* next = malloc(kBig / 4);
    memset(next, 0, kBig / 4);
    g_live = next;
    if (next == big) fputs("reused\n", stderr);  // stderr: glibc would not, and stdout must match
  }
  scrub_stack();
  return 0;
}
