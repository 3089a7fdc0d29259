// The same work split over N threads that share nothing: TOTAL malloc/free pairs, each thread
// with a ring of 256 live blocks of 16-1024 bytes, freeing its oldest as it allocates (no
// cross-thread frees, unlike churn). An allocator without a shared hot spot takes about 1/N of
// the time on N cores; prints the time the threads took. With `own`, each thread (of the first
// four) allocates from a call site of its own; else all from one (`one`). With DELAY, the
// threads hold their freed blocks back themselves, first in first out, DELAY blocks in all,
// before freeing them (as the quarantine holds them back, without it): each block comes back
// cold, with or without the tracker's quarantine.
//   thread_scaling N TOTAL [own|one] [DELAY]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long g_per_thread;
static int g_own_sites;
static long g_delay;  // per thread

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

static void* work(void* arg) {
  uint64_t s = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
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
    char* p = site(16 + s % 1009);
    if (!p) abort();
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

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 2;
  const long total = argc > 2 ? atol(argv[2]) : 20000000;
  g_own_sites = argc > 3 && argv[3][0] == 'o' && argv[3][1] == 'w';
  const long delay = argc > 4 ? atol(argv[4]) : 0;
  if (n < 1 || n > 256 || delay < 0) return 2;
  g_per_thread = total / n;
  g_delay = delay / n;
  pthread_t threads[256];
  const double start = now_s();
  for (long i = 0; i < n; ++i)
    if (pthread_create(&threads[i], NULL, work, (void*)i) != 0) return 1;
  for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL);
  printf("%d threads, %ld pairs: %.3f s\n", n, g_per_thread * n, now_s() - start);
  return 0;
}
