// A large block grown by realloc while kept mappings wait for reuse, then a free of the pointer
// realloc moved away from (the program's bug). Under tracking the old block must go to the
// quarantine, so that free is a double free, not the free of a block handed out since.
// Prints "ok" when the grown block kept its bytes and the next block of the old size is not the
// old pointer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void stale_free_after_realloc(void* p) { free(p); }

int main(void) {
  static char* big[40];
  for (int i = 0; i < 40; ++i) {  // past the 16 MiB quarantine: the oldest go to the pools' cache
    big[i] = malloc(1 << 20);
    memset(big[i], 1, 1 << 20);
  }
  for (int i = 0; i < 40; ++i) free(big[i]);
  unsigned char* p = malloc(100 * 1024);
  for (int i = 0; i < 100 * 1024; ++i) p[i] = (unsigned char)(i * 7);
  unsigned char* q = realloc(p, 130 * 1024);
  if (!q) return 1;
  for (int i = 0; i < 100 * 1024; ++i)
    if (q[i] != (unsigned char)(i * 7)) return 2;
  unsigned char* r = malloc(100 * 1024);
  if (q != p && r == p) return 3;  // the old block was handed out again at once
  stale_free_after_realloc(p);
  free(r);
  free(q);
  puts("ok");
  return 0;
}
