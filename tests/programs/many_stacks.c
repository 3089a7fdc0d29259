// More distinct allocation stacks than heapledger's stack table holds (2^20): a binary recursion
// DEPTH deep reaches malloc through 2^DEPTH different paths, each allocating and freeing one
// block; then one block larger than any before sets a new peak, which snapshots every call site.
//   many_stacks [DEPTH]    default 21 (2,097,152 stacks). Plain: prints "2097152 stacks", exits 0.
#include <stdio.h>
#include <stdlib.h>

#define KEEP(x) __asm__ volatile("" ::"r"(x) : "memory")

static int g_depth;

__attribute__((noinline)) void step(unsigned long path, int at);
__attribute__((noinline)) void left(unsigned long path, int at) {
  step(path, at);
  KEEP(path);
}
__attribute__((noinline)) void right(unsigned long path, int at) {
  step(path, at);
  KEEP(path);
}
__attribute__((noinline)) void step(unsigned long path, int at) {
  if (at == g_depth) {
    void* p = malloc(16);
    KEEP(p);
    free(p);
    return;
  }
  if (path >> at & 1)
    left(path, at + 1);
  else
    right(path, at + 1);
  KEEP(at);
}

int main(int argc, char** argv) {
  g_depth = argc > 1 ? atoi(argv[1]) : 21;
  if (g_depth < 1 || g_depth > 30) return 2;
  const unsigned long paths = 1UL << g_depth;
  for (unsigned long i = 0; i < paths; ++i) step(i, 0);
  void* peak = malloc(4321);
  KEEP(peak);
  printf("%lu stacks\n", paths);
  free(peak);
  return 0;
}
