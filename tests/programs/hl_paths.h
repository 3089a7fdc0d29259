// One leaf reached through 2^depth different call paths: a binary recursion whose level `at`
// calls step() again from left() or from right() as bit `at` of `path` says, so each path is a
// call stack of its own (its return addresses differ) of the same depth. hl_walk_paths runs the
// leaf once per path.
#pragma once

#define KEEP(x) __asm__ volatile("" ::"r"(x) : "memory")

static int hl_depth;
static void (*hl_leaf)(unsigned long path);

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
  if (at == hl_depth) {
    hl_leaf(path);
    return;
  }
  if (path >> at & 1)
    left(path, at + 1);
  else
    right(path, at + 1);
  KEEP(at);
}

// Calls leaf(path) through each of the 2^depth paths; returns how many there were.
static unsigned long hl_walk_paths(int depth, void (*leaf)(unsigned long path)) {
  hl_depth = depth;
  hl_leaf = leaf;
  const unsigned long paths = 1UL << depth;
  for (unsigned long i = 0; i < paths; ++i) step(i, 0);
  return paths;
}
