// A program that callocs a large buffer, writes into every page of it and frees it, in a loop
// (LLVM's StringMap tables, 32-192 KiB each, made thousands of times by clang-tidy): what a
// freed large mapping saves the next calloc. Each page's first byte is checked to read zero
// before it is written (exit status 1 if one did not). Not one of bench.py's workloads;
// docs/internals.md "Pools" quotes it.
//   calloc_churn SIZE ROUNDS
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: calloc_churn SIZE ROUNDS\n");
    return 2;
  }
  const size_t size = strtoul(argv[1], NULL, 10);
  const long rounds = strtol(argv[2], NULL, 10);
  unsigned long sum = 0;
  for (long i = 0; i < rounds; ++i) {
    unsigned char* p = calloc(1, size);
    if (!p) return 1;
    for (size_t off = 0; off < size; off += 4096) {
      if (p[off] != 0) {
        fprintf(stderr, "calloc_churn: round %ld: byte %zu reads %d\n", i, off, p[off]);
        return 1;
      }
      p[off] = (unsigned char)(i | 1);
    }
    sum += p[size - 1];
    free(p);
  }
  printf("calloc_churn: %lu\n", sum);
  return 0;
}
