// The same work split over N threads that share nothing: TOTAL malloc/free pairs, each thread
// with a ring of 256 live blocks of 16-1024 bytes, freeing its oldest as it allocates (no
// cross-thread frees, unlike churn). An allocator without a shared hot spot takes about 1/N of
// the time on N cores; prints the time the threads took. With `own`, each thread (of the first
// four) allocates from a call site of its own; else all from one (`one`). With DELAY, the
// threads hold their freed blocks back themselves, first in first out, DELAY blocks in all,
// before freeing them (as the quarantine holds them back, without it): each block comes back
// cold, with or without the tracker's quarantine. SIZES: `all` (16-1024 bytes, the default),
// `low` (16-512), `high` (528-1024), or `split` (even threads low, odd threads high: no size
// class, so no block, is ever used by two threads). With `count`, each thread also notes every
// block it gets, and the program prints how many of the blocks used were used by more than one
// thread (8 bytes of memory a pair: for runs of a few million pairs).
//   thread_scaling N TOTAL [own|one] [DELAY] [all|low|high|split] [count]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long g_per_thread;
static int g_own_sites;
static long g_delay;  // per thread
enum Sizes { kAll, kLow, kHigh, kSplit };
static enum Sizes g_sizes;
static uintptr_t** g_got;  // with count: each thread's blocks, in the order it got them

// Bodies that differ: identical ones are merged into one (-fipa-icf, on at -O2).
typedef void* (*Site)(size_t);
#define SITE(k)                                              \
  __attribute__((noinline)) static void* site##k(size_t n) { \
    __asm__ volatile("# site " #k ::: "memory");             \
    return malloc(n);                                        \
  }
SITE(0)
SITE(1)
SITE(2)
SITE(3)
static const Site kSites[4] = {site0, site1, site2, site3};

// Low: 16-512 bytes; high: 528-1024 (different size classes: the pools' classes are 16 bytes
// apart up to 128, then four to each doubling, 512 one of their bounds).
static size_t request_size(uint64_t s, uintptr_t thread) {
  const int high = g_sizes == kHigh || (g_sizes == kSplit && thread % 2 == 1);
  if (g_sizes == kAll) return 16 + s % 1009;
  return high ? 528 + s % 497 : 16 + s % 497;
}

static void* work(void* arg) {
  uint64_t s = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  uintptr_t* const got = g_got ? g_got[(uintptr_t)arg] : NULL;
  void* ring[256] = {0};
  const Site site = kSites[g_own_sites ? (uintptr_t)arg % 4 : 0];
  void** held = g_delay ? calloc((size_t)g_delay, sizeof(void*)) : NULL;
  if (g_delay && !held) abort();
  long next_held = 0;
  for (long i = 0; i < g_per_thread; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    void* old = ring[i & 255];
    if (held) {  // the oldest held block goes, this one waits in its place
      void* const oldest = held[next_held];
      held[next_held] = old;
      next_held = next_held + 1 == g_delay ? 0 : next_held + 1;
      old = oldest;
    }
    free(old);
    char* p = site(request_size(s, (uintptr_t)arg));
    if (!p) abort();
    if (got) got[i] = (uintptr_t)p;
    p[0] = 1;
    ring[i & 255] = p;
  }
  for (int k = 0; k < 256; ++k) free(ring[k]);
  for (long k = 0; k < g_delay; ++k) free(held[k]);
  free(held);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
  uintptr_t addr;
  long thread;
} Use;

static int by_address(const void* a, const void* b) {
  const uintptr_t x = ((const Use*)a)->addr, y = ((const Use*)b)->addr;
  return x < y ? -1 : x > y;
}

// How many distinct blocks the threads got, and how many of them more than one thread got.
static void count_shared(int n) {
  const size_t uses = (size_t)n * (size_t)g_per_thread;
  Use* all = malloc(uses * sizeof *all);
  if (!all) abort();
  size_t k = 0;
  for (long t = 0; t < n; ++t)
    for (long i = 0; i < g_per_thread; ++i) all[k++] = (Use){g_got[t][i], t};
  qsort(all, uses, sizeof *all, by_address);
  size_t blocks = 0, shared = 0;
  for (size_t i = 0; i < uses;) {
    size_t j = i + 1;
    int more = 0;
    for (; j < uses && all[j].addr == all[i].addr; ++j) more |= all[j].thread != all[i].thread;
    ++blocks;
    shared += more;
    i = j;
  }
  printf("blocks used: %zu, by more than one thread: %zu\n", blocks, shared);
  free(all);
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 2;
  const long total = argc > 2 ? atol(argv[2]) : 20000000;
  g_own_sites = argc > 3 && argv[3][0] == 'o' && argv[3][1] == 'w';
  const long delay = argc > 4 ? atol(argv[4]) : 0;
  const char* sizes = argc > 5 ? argv[5] : "all";
  const int count = argc > 6 && strcmp(argv[6], "count") == 0;
  if (n < 1 || n > 256 || delay < 0) return 2;
  if (strcmp(sizes, "all") == 0)
    g_sizes = kAll;
  else if (strcmp(sizes, "low") == 0)
    g_sizes = kLow;
  else if (strcmp(sizes, "high") == 0)
    g_sizes = kHigh;
  else if (strcmp(sizes, "split") == 0)
    g_sizes = kSplit;
  else
    return 2;
  g_per_thread = total / n;
  g_delay = delay / n;
  if (count) {
    g_got = calloc((size_t)n, sizeof *g_got);
    for (int i = 0; g_got && i < n; ++i)
      if (!(g_got[i] = malloc((size_t)g_per_thread * sizeof **g_got))) return 1;
    if (!g_got) return 1;
  }
  pthread_t threads[256];
  const double start = now_s();
  for (long i = 0; i < n; ++i)
    if (pthread_create(&threads[i], NULL, work, (void*)i) != 0) return 1;
  for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL);
  printf("%d threads, %ld pairs: %.3f s\n", n, g_per_thread * n, now_s() - start);
  if (count) count_shared(n);
  return 0;
}
