// Allocates COUNT large blocks, shrinks each to a small one with realloc and keeps them: each
// must stop being a mapping of its own (the system allows about 65,000).
//   shrink_large COUNT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const long count = atol(argv[1]);
  char** kept = malloc((size_t)count * sizeof *kept);
  if (!kept) return 1;
  for (long i = 0; i < count; ++i) {
    char* p = malloc(100000);
    if (!p) return printf("shrink_large: malloc %ld failed\n", i), 1;
    memset(p, 'a' + (int)(i % 26), 100);
    if (!(kept[i] = realloc(p, 100))) return printf("shrink_large: realloc %ld failed\n", i), 1;
  }
  for (long i = 0; i < count; ++i) {
    if (kept[i][99] != 'a' + (int)(i % 26))
      return printf("shrink_large: block %ld changed\n", i), 1;
    free(kept[i]);
  }
  free(kept);
  printf("shrink_large: %ld blocks\n", count);
  return 0;
}
