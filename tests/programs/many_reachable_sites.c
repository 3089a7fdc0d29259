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
  hl_depth = argc > 1 ? atoi(argv[1]) : 10;
  if (hl_depth < 1 || hl_depth > 20) return 2;
  hl_leaf = keep_one;
  const unsigned long paths = 1UL << hl_depth;
  g_kept = calloc(paths, sizeof *g_kept);
  for (unsigned long i = 0; i < paths; ++i) step(i, 0);
  printf("%lu sites\n", paths);
  return 0;
}
