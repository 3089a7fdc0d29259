// realloc of a large block whose mapping the program split in parts the kernel keeps apart
// (different advice on its middle pages): the mapping cannot be moved in one piece (mremap
// refuses a range over several regions), so realloc must copy instead of failing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
  enum { kSize = 1 << 20, kGrown = 4 << 20 };
  unsigned char* p = malloc(kSize);
  if (!p) return 1;
  for (size_t i = 0; i < kSize; ++i) p[i] = (unsigned char)(i * 7);
  unsigned char* mid = (unsigned char*)(((unsigned long)p + 256 * 1024) & ~4095ul);
  if (madvise(mid, 64 * 1024, MADV_RANDOM) != 0) return 2;
  unsigned char* q = realloc(p, kGrown);
  if (!q) {
    puts("realloc failed");
    return 3;
  }
  for (size_t i = 0; i < kSize; ++i)
    if (q[i] != (unsigned char)(i * 7)) return 4;
  memset(q + kSize, 1, kGrown - kSize);
  free(q);
  puts("ok");
  return 0;
}
