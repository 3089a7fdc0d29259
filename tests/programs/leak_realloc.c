// A block made by start_block() (malloc 16) is grown by grow_block() through realloc to 64, 256,
// 1024, 4096, 40000 and 70000 bytes, then shrunk to 3000 by shrink_block() and leaked: only
// 3000 bytes / 1 block remain, attributed to shrink_block. Contents are checked at every step.
// A second block goes through the same steps and is freed.
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

static int failures;

__attribute__((noinline)) unsigned char* start_block(void) {
  unsigned char* p = malloc(16);
  if (!p) return NULL;
  hl_fill(p, 16, 7);
  return p;
}

__attribute__((noinline)) unsigned char* grow_block(unsigned char* p) {
  static const size_t sizes[] = {64, 256, 1024, 4096, 40000, 70000};
  size_t old = 16;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    p = realloc(p, sizes[i]);
    if (!p || !hl_check(p, old, 7)) {
      ++failures;
      return p;
    }
    hl_fill(p, sizes[i], 7);
    old = sizes[i];
  }
  return p;
}

__attribute__((noinline)) unsigned char* shrink_block(unsigned char* p) {
  p = realloc(p, 3000);  // HL_LEAK_SITE shrink_block
  if (!p || !hl_check(p, 3000, 7)) ++failures;
  return p;
}

__attribute__((noinline)) void leak_realloc(void) {
  unsigned char* p = shrink_block(grow_block(start_block()));
  hl_sink(p);
}

__attribute__((noinline)) void free_realloc(void) {
  unsigned char* p = shrink_block(grow_block(start_block()));
  free(p);
}

int main(void) {
  free_realloc();
  leak_realloc();
  printf("leak_realloc: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
