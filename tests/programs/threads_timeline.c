// The timeline while threads count in slots of their own (tracker/live_totals.h), under an
// earlier 64 MiB peak:
//   idle     50 threads each hold 50 blocks of 1,000 bytes (2.5 MB in all) while main allocates
//            100 bytes every 15 ms, 20 times: every point then is 2.5 MB and a little.
//   handoff  one thread allocates 64 blocks of 4,000 bytes, another frees them, 2,000 rounds:
//            never more than 256,000 bytes live (and a few of the C library's).
// With each change's own thread's slot alone, the points were 18 KB in the first case and up to
// 65 MB in the second (a review's programs).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kThreads = 50, kHeld = 50, kRounds = 2000, kHanded = 64 };
static pthread_barrier_t g_held, g_done, g_turn;
static void* g_blocks[kHanded];

__attribute__((noinline)) static void* hold(size_t n) { return malloc(n); }

static void* holder(void* arg) {
  (void)arg;
  void* held[kHeld];
  for (int i = 0; i < 300; ++i) free(malloc(16));  // long enough to be given headroom
  for (int i = 0; i < kHeld; ++i) held[i] = hold(1000);
  pthread_barrier_wait(&g_held);
  pthread_barrier_wait(&g_done);
  for (int i = 0; i < kHeld; ++i) free(held[i]);
  return NULL;
}

static void* giver(void* arg) {
  (void)arg;
  for (int r = 0; r < kRounds; ++r) {
    for (int i = 0; i < kHanded; ++i) g_blocks[i] = malloc(4000);
    pthread_barrier_wait(&g_turn);
    pthread_barrier_wait(&g_turn);
  }
  return NULL;
}

static void* taker(void* arg) {
  (void)arg;
  for (int r = 0; r < kRounds; ++r) {
    pthread_barrier_wait(&g_turn);
    for (int i = 0; i < kHanded; ++i) free(g_blocks[i]);
    pthread_barrier_wait(&g_turn);
  }
  return NULL;
}

int main(int argc, char** argv) {
  void* spike = malloc(64 << 20);
  memset(spike, 1, 64);
  free(spike);
  if (argc > 1 && !strcmp(argv[1], "handoff")) {
    usleep(20000);
    pthread_barrier_init(&g_turn, NULL, 2);
    pthread_t a, b;
    pthread_create(&a, NULL, giver, NULL);
    pthread_create(&b, NULL, taker, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
  }
  pthread_barrier_init(&g_held, NULL, kThreads + 1);
  pthread_barrier_init(&g_done, NULL, kThreads + 1);
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; ++i) pthread_create(&t[i], NULL, holder, NULL);
  pthread_barrier_wait(&g_held);
  void* kept[20];
  for (int i = 0; i < 20; ++i) {
    usleep(15000);
    kept[i] = malloc(100);
  }
  pthread_barrier_wait(&g_done);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  for (int i = 0; i < 20; ++i) free(kept[i]);
  return 0;
}
