// The machine's memory latency as the benchmark finds it: each of N threads follows a chain of
// pointers through MIB MiB of its own, one cache line after another in random order, so every
// step waits for the one before (no overlap). Prints nanoseconds per step. Shows what state the
// machine is in: on the benchmark's VM the same 8 MiB chain has taken 20 ns a step one minute
// (in the caches) and 130 ns the next, and workloads whose misses cannot overlap (full tracking
// over cold blocks) move with it. bench.py runs it at the start and the end.
//   mem_latency N MIB [STEPS]
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t g_lines;
static long g_steps;
static pthread_barrier_t g_ready, g_go;
static double g_ns[64];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void* chase(void* arg) {
  const size_t n = g_lines;
  uint64_t* lines = aligned_alloc(64, n * 64);
  uint32_t* order = malloc(n * sizeof *order);
  if (!lines || !order) abort();
  uint64_t s = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  for (size_t i = 0; i < n; ++i) order[i] = (uint32_t)i;
  for (size_t i = n - 1; i > 0; --i) {  // a random cycle through every line
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    const size_t j = s % (i + 1);
    const uint32_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
  for (size_t i = 0; i < n; ++i) lines[order[i] * 8] = order[(i + 1) % n] * 8;
  free(order);
  pthread_barrier_wait(&g_ready);
  pthread_barrier_wait(&g_go);
  const double start = now_s();
  uint64_t at = 0;
  for (long i = 0; i < g_steps; ++i) at = lines[at];
  g_ns[(uintptr_t)arg] = (now_s() - start) * 1e9 / (double)g_steps;
  free(lines);
  return (void*)(uintptr_t)at;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 1;
  const long mib = argc > 2 ? atol(argv[2]) : 8;
  g_steps = argc > 3 ? atol(argv[3]) : 5000000;
  if (n < 1 || n > 64 || mib < 1 || g_steps < 1) {
    fprintf(stderr, "usage: mem_latency N MIB [STEPS]\n");
    return 2;
  }
  g_lines = (size_t)mib * 1024 * 1024 / 64;
  pthread_barrier_init(&g_ready, NULL, (unsigned)n + 1);
  pthread_barrier_init(&g_go, NULL, (unsigned)n + 1);
  pthread_t threads[64];
  for (long i = 0; i < n; ++i)
    if (pthread_create(&threads[i], NULL, chase, (void*)i) != 0) return 1;
  pthread_barrier_wait(&g_ready);  // every chain built before any thread starts timing
  pthread_barrier_wait(&g_go);
  double sum = 0;
  for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL), sum += g_ns[i];
  printf("%d threads, %ld MiB each: %.1f ns a step\n", n, mib, sum / n);
  return 0;
}
