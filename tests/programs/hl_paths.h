// One leaf reached through 2^hl_depth different call paths: a binary recursion whose level `at`
// calls step() again from left() or from right() as bit `at` of `path` says, so each path is a
// call stack of its own (its return addresses differ) of the same depth. A program sets hl_depth
// and hl_leaf, then calls step(path, 0) for each path.
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
