// calloc of large blocks that take freed mappings the pools kept: every byte must read zero,
// whatever the mapping's earlier owners wrote (also past what they asked for, up to the pages they
// were given), for sizes cleared by writing (up to 1 MiB) and by giving pages back (past it), for
// a calloc smaller than the kept mapping, and for requests that grow past the freed ones (whose
// mappings get room to grow). Rounds enough to push freed blocks through the quarantine.
//   calloc_reuse ROUNDS       prints "ok" (exit 0), or the first byte that was not zero (exit 1)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

static int check_zero(const unsigned char* p, size_t n, const char* what, size_t size) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) {
      printf("%s %zu: byte %zu reads %d\n", what, size, i, p[i]);
      return 0;
    }
  return 1;
}

// A block of size bytes, dirtied as far as the program may use it.
static void dirty_and_free(size_t size) {
  unsigned char* p = malloc(size);
  if (!p) exit(2);
  memset(p, 0xa5, malloc_usable_size(p));
  free(p);
}

static int calloc_checked(size_t size, const char* what) {
  unsigned char* q = calloc(1, size);
  if (!q) exit(2);
  if (!check_zero(q, size, what, size)) return 0;
  memset(q, 0x5a, size);
  free(q);
  return 1;
}

int main(int argc, char** argv) {
  const long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 20;
  static const size_t sizes[] = {36 << 10, 40000, 100000, 300000, 1 << 20, 3 << 20};
  const size_t n = sizeof sizes / sizeof sizes[0];
  for (long r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < n; ++i) dirty_and_free(sizes[i]);
    for (size_t i = 0; i < n; ++i)
      if (!calloc_checked(sizes[i], "same") || !calloc_checked(sizes[i] / 2 + 4096, "smaller") ||
          !calloc_checked(sizes[i] + 4096, "larger"))
        return 1;
    // Growing requests: each a page or so past the last freed one.
    for (size_t s = 40000; s < 200000; s += 3000) {
      dirty_and_free(s);
      if (!calloc_checked(s + 3000, "growing")) return 1;
    }
  }
  puts("ok");
  return 0;
}
