// Allocates COUNT blocks of SIZE bytes (writing each), keeps them all, then frees all but the last
// LEAK (dropped: lost) and says whether every malloc succeeded. Run under an address-space limit
// (ulimit -v), where the pools' classes are small. Blocks of 32 bytes or more keep a pointer to
// one of the lost blocks in their second 16 bytes when freed: freed memory is no root.
//   small_blocks COUNT SIZE LEAK
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const long count = atol(argv[1]), leak = atol(argv[3]);
  const size_t size = (size_t)atol(argv[2]);
  void** blocks = malloc((size_t)count * sizeof *blocks);
  if (!blocks) return puts("small_blocks: no array"), 1;
  for (long i = 0; i < count; ++i) {
    if (!(blocks[i] = malloc(size)))
      return printf("small_blocks: malloc %ld of %ld failed\n", i, count), 1;
    memset(blocks[i], (int)i, size);
  }
  for (long i = 0; i < count - leak; ++i) {
    if (size >= 32 && leak > 0) ((void**)blocks[i])[2] = blocks[count - 1 - i % leak];
    free(blocks[i]);
  }
  free(blocks);
  printf("small_blocks: %ld blocks of %zu bytes\n", count, size);
  return 0;
}
