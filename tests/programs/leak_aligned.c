// Leaks one aligned block from each aligned entry point: posix_memalign(64, 200),
// aligned_alloc(4096, 4096), memalign(256, 300), valloc(1000). Aligned blocks of every alignment
// from 16 to 64 KiB are allocated and freed. Exit status 0 only if every alignment is honoured.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hl_sink.h"

static int failures;

static void expect_aligned(const char* what, void* p, size_t align) {
  if (!p || ((uintptr_t)p % align) != 0) {
    printf("FAIL %s: %p not aligned to %zu\n", what, p, align);
    ++failures;
  }
}

__attribute__((noinline)) void leak_posix_memalign(void) {
  void* p = NULL;
  if (posix_memalign(&p, 64, 200) != 0) ++failures;
  expect_aligned("posix_memalign", p, 64);
  hl_sink(p);
}

__attribute__((noinline)) void leak_aligned_alloc(void) {
  void* p = aligned_alloc(4096, 4096);
  expect_aligned("aligned_alloc", p, 4096);
  hl_sink(p);
}

__attribute__((noinline)) void leak_memalign(void) {
  void* p = memalign(256, 300);
  expect_aligned("memalign", p, 256);
  hl_sink(p);
}

__attribute__((noinline)) void leak_valloc(void) {
  void* p = valloc(1000);
  expect_aligned("valloc", p, (size_t)sysconf(_SC_PAGESIZE));
  hl_sink(p);
}

// Every alignment, every aligned entry point, all freed (and written to their full size).
__attribute__((noinline)) void churn_aligned(void) {
  for (size_t align = 16; align <= 65536; align *= 2) {
    for (size_t size = 1; size <= 3 * align; size = size * 3 + 7) {
      void* a = NULL;
      if (posix_memalign(&a, align, size) != 0) ++failures;
      void* b = memalign(align, size);
      void* c = aligned_alloc(align, (size + align - 1) / align * align);
      expect_aligned("churn posix_memalign", a, align);
      expect_aligned("churn memalign", b, align);
      expect_aligned("churn aligned_alloc", c, align);
      hl_fill(a, size, 1);
      hl_fill(b, size, 2);
      if (!hl_check(a, size, 1) || !hl_check(b, size, 2)) ++failures;
      free(a);
      free(b);
      free(c);
    }
  }
}

int main(void) {
  churn_aligned();
  leak_posix_memalign();
  leak_aligned_alloc();
  leak_memalign();
  leak_valloc();
  printf("leak_aligned: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
