// Threads that allocate and free in waves (2,000 blocks up, then all of them down) while main
// returns: they run on while the exit report begins, until its scan stops them. The report's
// allocation and free counts must agree with the live blocks the scan found (they were read
// before the stop, and the threads' waves came in between).
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

enum { kThreads = 3, kWave = 2000 };
static atomic_int g_waves;

static void* churn(void* arg) {
  (void)arg;
  void** blocks = malloc(kWave * sizeof *blocks);
  for (;;) {
    for (int i = 0; i < kWave; ++i) blocks[i] = malloc(48);
    for (int i = 0; i < kWave; ++i) free(blocks[i]);
    atomic_fetch_add(&g_waves, 1);
  }
  return NULL;
}

int main(void) {
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) pthread_create(&threads[i], NULL, churn, NULL);
  while (atomic_load(&g_waves) < 20) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}
