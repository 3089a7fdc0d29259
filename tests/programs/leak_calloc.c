// Leaks calloc(10, 30) = 300 bytes from leak_calloc(). Before each calloc, a dirty block of the
// same size is freed so a reused block that is not zeroed would be caught. Exit 0 if all zero.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

static int failures;

__attribute__((noinline)) static void dirty_free(size_t n) {
  unsigned char* p = malloc(n);
  if (!p) return;
  memset(p, 0xAB, n);
  hl_sink(p);
  free(p);
}

__attribute__((noinline)) void leak_calloc(void) {
  dirty_free(300);
  unsigned char* p = calloc(10, 30);
  if (!p || !hl_all_zero(p, 300)) ++failures;
  hl_sink(p);
}

// calloc of many sizes, each checked and freed; 200000 crosses into the large-block path.
__attribute__((noinline)) void churn_calloc(void) {
  static const size_t sizes[] = {1, 8, 24, 100, 300, 1000, 4096, 5000, 65536, 200000};
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
      dirty_free(sizes[i]);
      unsigned char* p = calloc(1, sizes[i]);
      if (!p || !hl_all_zero(p, sizes[i])) ++failures;
      free(p);
    }
  }
}

int main(void) {
  churn_calloc();
  leak_calloc();
  printf("leak_calloc: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
