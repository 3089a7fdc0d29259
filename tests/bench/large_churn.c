// A program that mallocs, fills and frees one large buffer in a loop (an I/O buffer per request,
// say): what a freed large block costs the next one. Not one of bench.py's workloads; README
// "What the report tells you" (double_free) quotes it.
//   large_churn SIZE ROUNDS FILL     FILL 1: memset the whole buffer, 0: touch one byte
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: large_churn SIZE ROUNDS FILL\n");
    return 2;
  }
  const size_t size = strtoul(argv[1], NULL, 10);
  const long rounds = strtol(argv[2], NULL, 10);
  const int fill = atoi(argv[3]);
  unsigned long sum = 0;
  for (long i = 0; i < rounds; ++i) {
    unsigned char* p = malloc(size);
    if (!p) return 1;
    if (fill)
      memset(p, (int)i, size);
    else
      p[0] = (unsigned char)i;
    sum += p[size / 2];
    free(p);
  }
  printf("large_churn: %lu\n", sum);
  return 0;
}
