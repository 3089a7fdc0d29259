// What a program sees of the allocator when the C library's serves it (run under an
// address-space limit too low for heapledger's pools): the size of a block, its content across
// realloc, and malloc_trim after freeing. Linked with usable_size_lib, whose malloc_usable_size
// (as jemalloc's) must not be the one that sizes the C library's blocks.
//   system_calls
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kBlocks = 200000 };

int main(void) {
  char* p = malloc(100);
  if (!p) return 1;
  memset(p, 'x', 100);
  size_t usable = malloc_usable_size(p);
  printf("usable: %s\n", usable >= 100 && usable < 200 ? "at least what was asked" : "wrong");
  p = realloc(p, 100000);
  if (!p) return 1;
  int kept = 1;
  for (int i = 0; i < 100; ++i) kept &= p[i] == 'x';
  p = realloc(p, 50);
  kept &= p && p[49] == 'x';
  printf("realloc keeps the content: %s\n", kept ? "yes" : "no");
  free(p);
  static void* blocks[kBlocks];
  for (int i = 0; i < kBlocks; ++i) memset(blocks[i] = malloc(200), 1, 200);
  for (int i = 0; i < kBlocks; ++i) free(blocks[i]);
  printf("malloc_trim after freeing 40 MB: %d\n", malloc_trim(0));
  return 0;
}
