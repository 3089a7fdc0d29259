// Still-reachable blocks from many call sites: a binary recursion DEPTH deep reaches malloc
// through 2^DEPTH different paths; path i allocates one block of 16 + i bytes and keeps it in a
// global array (so every block is still reachable at exit, each from its own call site).
//   many_reachable_sites [DEPTH]    default 10 (1,024 sites, 540,160 bytes). Prints "1024 sites".
#include <stdio.h>
#include <stdlib.h>

#define KEEP(x) __asm__ volatile("" ::"r"(x) : "memory")

static int g_depth;
static void** g_kept;

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
    g_kept[path] = malloc(16 + path);
    return;
  }
  if (path >> at & 1)
    left(path, at + 1);
  else
    right(path, at + 1);
  KEEP(at);
}

int main(int argc, char** argv) {
  g_depth = argc > 1 ? atoi(argv[1]) : 10;
  if (g_depth < 1 || g_depth > 20) return 2;
  const unsigned long paths = 1UL << g_depth;
  g_kept = calloc(paths, sizeof *g_kept);
  for (unsigned long i = 0; i < paths; ++i) step(i, 0);
  printf("%lu sites\n", paths);
  return 0;
}
