// Rounds of scratch work over a growing heap: each round fills SCRATCH MiB with short-lived
// blocks of eight sizes (one size after another, each freed before the next), then keeps KEEP
// MiB more of 48-byte blocks for good (a compiler over many files, a batch job over records).
// The case that costs a pools allocator most when it gives back the pages of a class that looks
// idle: the next round wants them again (docs/internals.md, Pools).
//   scratch_rounds ROUNDS SCRATCH KEEP
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const int rounds = atoi(argv[1]);
  const size_t scratch = (size_t)atol(argv[2]) << 20, keep = (size_t)atol(argv[3]) << 20;
  static const size_t kSizes[] = {32, 64, 96, 160, 320, 640, 1280, 2560};
  const size_t kinds = sizeof kSizes / sizeof kSizes[0];
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < kinds; ++k) {
      const size_t n = scratch / kinds / kSizes[k];
      char** blocks = malloc(n * sizeof *blocks);
      if (!blocks) return 1;
      for (size_t i = 0; i < n; ++i) {
        if (!(blocks[i] = malloc(kSizes[k]))) return 1;
        memset(blocks[i], r, kSizes[k]);
      }
      for (size_t i = 0; i < n; ++i) free(blocks[i]);
      free(blocks);
    }
    for (size_t kept = 0; kept < keep; kept += 48) {
      char* p = malloc(48);  // kept to the end
      if (!p) return 1;
      memset(p, 1, 48);
      __asm__ volatile("" : : "r"(p) : "memory");
    }
  }
  return 0;
}
