// More distinct allocation stacks than heapledger's stack table holds (2^20): a binary recursion
// DEPTH deep reaches malloc through 2^DEPTH different paths, each allocating and freeing one
// block; then one block larger than any before sets a new peak, which snapshots every call site.
//   many_stacks [DEPTH]    default 21 (2,097,152 stacks). Plain: prints "2097152 stacks", exits 0.
#include <stdio.h>
#include <stdlib.h>

#include "hl_paths.h"

__attribute__((noinline)) static void allocate_and_free(unsigned long path) {
  void* p = malloc(16);
  KEEP(p);
  free(p);
  KEEP(path);
}

int main(int argc, char** argv) {
  const int depth = argc > 1 ? atoi(argv[1]) : 21;
  if (depth < 1 || depth > 30) return 2;
  const unsigned long paths = hl_walk_paths(depth, allocate_and_free);
  void* peak = malloc(4321);
  KEEP(peak);
  printf("%lu stacks\n", paths);
  free(peak);
  return 0;
}
