// The peak of a program with threads, and what each call site held at it.
//   threads_peak exited   four threads churn and free all they allocated, and end; then main
//                         allocates 100 blocks of 1,000 bytes (main_site) and one of 1,000,000
//                         (big_site), the peak, and frees them. At the peak churn_site holds
//                         nothing.
//   threads_peak held     four threads allocate 100 blocks of 1,000 bytes each (held_site) at
//                         once, wait until all have (main too), then free them and end: the
//                         peak holds 400,000 bytes at held_site.
//   threads_peak idle     main allocates 100 blocks of 1,000 bytes (early_site) and frees them;
//                         eight threads allocate 3,000 bytes each (held_site), below that first
//                         peak, and wait; then main allocates 150 blocks of 1,000 (main_site),
//                         the peak, frees them and lets the threads end: the peak holds 24,000
//                         bytes at held_site and 150,000 at main_site.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

enum { kThreads = 4, kHeld = 100, kChurnRing = 64, kChurnOps = 20000, kIdle = 8, kIdleHeld = 3 };

static pthread_barrier_t g_all_hold, g_main_done;

__attribute__((noinline)) static void* churn_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* held_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* main_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* big_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* early_site(size_t n) { return malloc(n); }

static void* churn(void* arg) {
  uint64_t s = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
  void* ring[kChurnRing] = {0};
  for (int i = 0; i < kChurnOps; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    free(ring[i % kChurnRing]);
    hl_sink(ring[i % kChurnRing] = churn_site(16 + s % 2000));
  }
  for (int i = 0; i < kChurnRing; ++i) free(ring[i]);
  return NULL;
}

// n blocks of 1,000 bytes, held until every thread (and main) has its own; with wait_for_main,
// also until main has made its peak.
static void hold_blocks(int n, int wait_for_main) {
  void* blocks[kHeld];
  for (int i = 0; i < n; ++i) hl_sink(blocks[i] = held_site(1000));
  pthread_barrier_wait(&g_all_hold);
  if (wait_for_main) pthread_barrier_wait(&g_main_done);
  for (int i = 0; i < n; ++i) free(blocks[i]);
}

static void* hold(void* arg) {
  hold_blocks(kHeld, 0);
  return arg;
}

static void* hold_idle(void* arg) {
  hold_blocks(kIdleHeld, 1);
  return arg;
}

static int idle(void) {
  static void* early[100];
  for (int i = 0; i < 100; ++i) hl_sink(early[i] = early_site(1000));
  for (int i = 0; i < 100; ++i) free(early[i]);
  pthread_t threads[kIdle];
  pthread_barrier_init(&g_all_hold, NULL, kIdle + 1);
  pthread_barrier_init(&g_main_done, NULL, kIdle + 1);
  for (intptr_t i = 0; i < kIdle; ++i)
    if (pthread_create(&threads[i], NULL, hold_idle, (void*)i) != 0) return 1;
  pthread_barrier_wait(&g_all_hold);
  static void* blocks[150];
  for (int i = 0; i < 150; ++i) hl_sink(blocks[i] = main_site(1000));
  for (int i = 0; i < 150; ++i) free(blocks[i]);
  pthread_barrier_wait(&g_main_done);
  for (int i = 0; i < kIdle; ++i) pthread_join(threads[i], NULL);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "idle") == 0) return idle();
  const int held = argc > 1 && strcmp(argv[1], "held") == 0;
  pthread_t threads[kThreads];
  if (held) pthread_barrier_init(&g_all_hold, NULL, kThreads + 1);
  for (intptr_t i = 0; i < kThreads; ++i)
    if (pthread_create(&threads[i], NULL, held ? hold : churn, (void*)i) != 0) return 1;
  if (held) pthread_barrier_wait(&g_all_hold);
  for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
  if (held) return 0;
  static void* blocks[kHeld];  // static: no block of the program's own holds the pointers
  for (int i = 0; i < kHeld; ++i) hl_sink(blocks[i] = main_site(1000));
  void* big = big_site(1000000);
  hl_sink(big);
  free(big);
  for (int i = 0; i < kHeld; ++i) free(blocks[i]);
  return 0;
}
