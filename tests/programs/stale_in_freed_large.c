// The only pointers to a leaked block are left in a large block the program freed. The pools
// give a freed large mapping back (a mapping kept for reuse would carry its stale contents, and
// whatever protection or advice the program gave it, to the next owner); either way its old
// contents must not make the leak look reachable.
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

enum { kBig = 256 * 1024 };

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

int main(void) {
  free(lose_in_big());
  scrub_stack();
  return 0;
}
