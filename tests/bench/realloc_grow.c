// A buffer grown by realloc a quarter at a time, filled as it grows, then freed, ROUNDS times
// (python3's json.dumps and string builders grow their output this way). Each round checks
// that what it wrote survived the moves.
//   realloc_grow ROUNDS MAX_BYTES
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const int rounds = atoi(argv[1]);
  const size_t max = (size_t)atol(argv[2]);
  for (int r = 0; r < rounds; ++r) {
    unsigned char* p = NULL;
    size_t size = 0;
    while (size < max) {
      const size_t grown = size + size / 4 + 100;
      unsigned char* q = realloc(p, grown);
      if (!q) return 1;
      p = q;
      memset(p + size, (r + (int)size) & 0xff, grown - size);
      size = grown;
    }
    for (size_t at = 0, step = 0; at < size; step = step + step / 4 + 100, at = step)
      if (p[at] != ((r + (int)at) & 0xff)) {
        fprintf(stderr, "round %d: byte %zu lost\n", r, at);
        return 1;
      }
    free(p);
  }
  return 0;
}
