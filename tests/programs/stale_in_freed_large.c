// The only pointers to a leaked block are left in a large block the program freed. The pools
// keep a freed large mapping for reuse (shim/span_cache.h), so its old contents stay in memory:
// in the kept mapping, or in the next block that takes it. Either way they must not make the
// leak look reachable.
//   stale_in_freed_large           free the block and exit (the mapping stays kept)
//   stale_in_freed_large reuse     then allocate a quarter of its size, live until exit, and write
//                                  all of that quarter (the old pointer in the last page is slack)
//   stale_in_freed_large partial   the same, writing only its first 16 bytes (the pointers in the
//                                  quarter are the mapping's last owner's, not this block's)
//   stale_in_freed_large grow      allocate 40,000 bytes, write 16, then realloc it to 200,000
//                                  within the mapping (a pointer at 100,000 is the last owner's)
//   stale_in_freed_large tail      allocate 40,000 bytes, write 16, then realloc it to 40,900,
//                                  within its last page (a pointer at 40,008 is the last owner's)
// In every mode but the first, "reused" goes to stderr if the block took the freed mapping.
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
  big[100] = leaked;                     // first page
  big[40008 / sizeof *big] = leaked;     // past 40,000 bytes, in the same page
  big[100000 / sizeof *big] = leaked;    // past 40,000 bytes, before 200,000
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
  const char* mode = argc > 1 ? argv[1] : "";
  void* next = NULL;
  if (strcmp(mode, "reuse") == 0 || strcmp(mode, "partial") == 0) {
    next = malloc(kBig / 4);
    memset(next, 0, strcmp(mode, "reuse") == 0 ? kBig / 4 : 16);
  } else if (strcmp(mode, "grow") == 0 || strcmp(mode, "tail") == 0) {
    next = malloc(40000);
    memset(next, 0, 16);
    void* grown = realloc(next, strcmp(mode, "grow") == 0 ? 200000 : 40900);
    if (grown != next) next = NULL;  // moved: not the case under test
    if (!grown) return 1;
    memset(grown, 0, 16);
    g_live = grown;
  }
  if (next) g_live = next;
  // stderr: glibc would not reuse it, and stdout must match a plain run.
  if (next && next == big) fputs("reused\n", stderr);
  scrub_stack();
  return 0;
}
