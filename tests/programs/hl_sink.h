// Helpers for the test programs: make an allocation observable so the compiler cannot elide it,
// then drop the last reference so a leaked block is really unreachable.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// Opaque to the optimizer: the pointer escapes through a volatile store, then the store is undone.
static void* volatile hl_sink_slot;

__attribute__((noinline, unused)) static void hl_sink(void* p) {
  hl_sink_slot = p;
  __asm__ volatile("" : : "r"(p) : "memory");
  hl_sink_slot = NULL;
}

// A leaf that leaves p 64 bytes below its caller's stack pointer (in its red zone), as functions
// called before a blocking call leave their values: a stale copy there is no root for a thread
// blocked in a system call.
__attribute__((noinline, unused)) static void hl_leave_below(void* p) {
  __asm__ volatile("movq %0, -56(%%rsp)" ::"r"(p) : "memory");
}

// Leaks a block of `size` bytes from a call stack of its own: `depth` frames of this function
// above the allocation, so that each depth is a leak site of its own.
__attribute__((noinline, unused)) static void hl_leak_at_depth(int depth, int size) {
  if (depth == 0) {
    hl_sink(malloc((size_t)size));
    return;
  }
  hl_leak_at_depth(depth - 1, size);
  __asm__ volatile("");  // not a tail call: each depth is a frame of its own
}

// Fills a block with a pattern derived from `seed` and checks it later (realloc/queue tests).
__attribute__((noinline, unused)) static void hl_fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)(seed + i * 131u);
}

__attribute__((noinline, unused)) static int hl_check(const unsigned char* p, size_t n,
                                                      unsigned seed) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != (unsigned char)(seed + i * 131u)) return 0;
  return 1;
}

__attribute__((noinline, unused)) static int hl_all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return 0;
  return 1;
}
