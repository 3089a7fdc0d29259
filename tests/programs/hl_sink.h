// Helpers for the test programs: make an allocation observable so the compiler cannot elide it,
// then drop the last reference so a leaked block is really unreachable.
#pragma once

#include <stddef.h>
#include <stdint.h>

// Opaque to the optimizer: the pointer escapes through a volatile store, then the store is undone.
static void* volatile hl_sink_slot;

__attribute__((noinline, unused)) static void hl_sink(void* p) {
  hl_sink_slot = p;
  __asm__ volatile("" : : "r"(p) : "memory");
  hl_sink_slot = NULL;
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
