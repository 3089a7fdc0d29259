// Measures what sizes real programs ask for: preload it, and at exit it prints how many
// malloc/calloc/realloc requests (operator new goes through malloc in libstdc++) fell at or under
// each size. Used to choose heapledger's size classes; see docs/internals.md
// "Size classes, and why".
//   gcc -O2 -shared -fPIC tests/bench/size_histogram.c -o /tmp/size_histogram.so
//   LD_PRELOAD=/tmp/size_histogram.so python3 -c 'import json'
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);

static const size_t kBounds[] = {16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 16384, 32768, 65536, 262144};
#define NB (sizeof kBounds / sizeof kBounds[0])
static atomic_ulong counts[NB + 1];

static void count(size_t n) {
  size_t i = 0;
  while (i < NB && n > kBounds[i]) ++i;
  atomic_fetch_add_explicit(&counts[i], 1, memory_order_relaxed);
}

void* malloc(size_t n) { count(n); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { count(a * b); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { count(n); return __libc_realloc(p, n); }

__attribute__((destructor)) static void report(void) {
  unsigned long total = 0, cum = 0;
  for (size_t i = 0; i <= NB; ++i) total += counts[i];
  char line[160];
  int len = snprintf(line, sizeof line, "size_histogram pid %d: %lu requests\n", (int)getpid(), total);
  write(2, line, (size_t)len);
  for (size_t i = 0; i < NB && total; ++i) {
    cum += counts[i];
    len = snprintf(line, sizeof line, "  <= %6zu B: %6.2f%%\n", kBounds[i], 100.0 * (double)cum / (double)total);
    write(2, line, (size_t)len);
  }
}
