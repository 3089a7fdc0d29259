// A program that mallocs, fills and frees a large buffer whose size grows a little every round
// (a message buffer sized to its input, say): unlike large_churn, each round's block may need a
// mapping of another length than the blocks freed just before it. Not one of bench.py's
// workloads; README "What the report tells you" (double_free) quotes it.
//   large_grow FROM TO ROUNDS     sizes go from FROM to TO in equal steps
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: large_grow FROM TO ROUNDS\n");
    return 2;
  }
  const size_t from = strtoul(argv[1], NULL, 10);
  const size_t to = strtoul(argv[2], NULL, 10);
  const long rounds = strtol(argv[3], NULL, 10);
  unsigned long sum = 0;
  for (long i = 0; i < rounds; ++i) {
    const size_t size = from + (size_t)((double)(to - from) * i / rounds);
    unsigned char* p = malloc(size);
    if (!p) return 1;
    memset(p, 1, size);
    sum += p[size / 2];
    free(p);
  }
  printf("large_grow: %lu\n", sum);
  return 0;
}
