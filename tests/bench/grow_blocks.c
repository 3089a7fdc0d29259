// Blocks whose size keeps growing: malloc(size), write it all, free it, with size rising from
// LO to HI over N rounds (a buffer or string that is rebuilt bigger each time). Under full
// tracking the quarantine gives each block back long after, to a size class the program has
// left (README, Known limits).
//   grow_blocks N LO HI
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const long n = atol(argv[1]), lo = atol(argv[2]), hi = atol(argv[3]);
  if (n <= 0 || lo <= 0 || hi < lo) return 2;
  for (long i = 0; i < n; ++i) {
    const size_t size = (size_t)(lo + (hi - lo) * i / n);
    char* p = malloc(size);
    if (!p) return 1;
    memset(p, 1, size);
    __asm__ volatile("" : : "r"(p) : "memory");  // the block is used: no elision
    free(p);
  }
  return 0;
}
