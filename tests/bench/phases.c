// A program that works in phases: it fills MIB MiB with blocks of one size, frees them all, then
// does the same with blocks of the next size, and so on. glibc's allocator reuses the first
// phase's memory for the next; a size-class allocator keeps it for its class unless it gives the
// pages back (docs/internals.md, Pools). Peak RSS is the measure: /usr/bin/time -f "%M KB".
//   phases MIB SIZE...
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const size_t bytes = (size_t)atol(argv[1]) << 20;
  for (int a = 2; a < argc; ++a) {
    const size_t size = (size_t)atol(argv[a]);
    if (size == 0) return 2;
    const size_t n = bytes / size;
    char** blocks = malloc(n * sizeof *blocks);
    if (!blocks) return 1;
    for (size_t i = 0; i < n; ++i) {
      if (!(blocks[i] = malloc(size))) return 1;
      memset(blocks[i], 1, size);
    }
    for (size_t i = 0; i < n; ++i) free(blocks[i]);
    free(blocks);
  }
  return 0;
}
