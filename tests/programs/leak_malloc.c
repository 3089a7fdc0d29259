// Leaks 3 blocks of 100 bytes from leak_malloc() and 1 block of 50 bytes from leak_other();
// everything churn() allocates is freed. Exit status 0.
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline)) void leak_malloc(void) {
  for (int i = 0; i < 3; ++i) {
    void* p = malloc(100);  // HL_LEAK_SITE leak_malloc
    hl_sink(p);
  }
}

__attribute__((noinline)) void leak_other(void) {
  void* p = malloc(50);
  hl_sink(p);
}

// Allocates and frees blocks of many sizes: none of them may be reported.
__attribute__((noinline)) int churn(void) {
  void* blocks[64];
  for (int i = 0; i < 64; ++i) {
    blocks[i] = malloc((size_t)(i * 37 + 1));
    if (!blocks[i]) return 0;
    hl_sink(blocks[i]);
  }
  for (int i = 0; i < 64; i += 2) free(blocks[i]);
  for (int i = 1; i < 64; i += 2) free(blocks[i]);
  void* big = malloc(300000);
  if (!big) return 0;
  hl_sink(big);
  free(big);
  return 1;
}

int main(void) {
  if (!churn()) return 1;
  leak_malloc();
  leak_other();
  printf("leak_malloc: leaked 3 x 100 bytes and 1 x 50 bytes\n");
  return 0;
}
