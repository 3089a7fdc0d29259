// Still-reachable blocks from many call sites: a binary recursion DEPTH deep reaches malloc
// through 2^DEPTH different paths (hl_paths.h); path i allocates one block of 16 + i bytes and
// keeps it in a global array (so every block is still reachable at exit, each from its own call
// site).
//   many_reachable_sites [DEPTH]    default 10 (1,024 sites, 540,160 bytes). Prints "1024 sites".
#include <stdio.h>
#include <stdlib.h>

#include "hl_paths.h"

static void** g_kept;

__attribute__((noinline)) static void keep_one(unsigned long path) {
  g_kept[path] = malloc(16 + path);
  KEEP(path);
}

int main(int argc, char** argv) {
  const int depth = argc > 1 ? atoi(argv[1]) : 10;
  if (depth < 1 || depth > 14) return 2;  // 2^14 blocks of 16 + i bytes: 134 MB
  g_kept = calloc(1UL << depth, sizeof *g_kept);
  const unsigned long paths = hl_walk_paths(depth, keep_one);
  printf("%lu sites\n", paths);
  return 0;
}
