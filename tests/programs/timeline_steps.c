// Live memory that steps up and down.
//   (no argument)  three times, a 1 MiB block is allocated, held 30 ms and freed, then nothing is
//                  held for 30 ms.
//   burst          32 blocks of 1 MiB allocated one right after the other, held 150 ms, freed
//                  one right after the other; 150 ms later a small block comes and goes. The
//                  changes of each burst fall within a tick or two of the clock the timeline
//                  reads, each more than 1% of what is live.
//   burst_threads  the same, while two other threads (idle, each with a little held) exist.
// Exits 0 with nothing leaked.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void steps(void) {
  for (int i = 0; i < 3; ++i) {
    char* volatile block = malloc(1 << 20);
    memset(block, i, 1 << 20);
    pause_ms(30);
    free(block);
    pause_ms(30);
  }
}

static void burst(void) {
  enum { kBlocks = 32 };
  char* blocks[kBlocks];
  pause_ms(20);
  for (int i = 0; i < kBlocks; ++i) {
    blocks[i] = malloc(1 << 20);
    blocks[i][0] = (char)i;
  }
  pause_ms(150);
  for (int i = 0; i < kBlocks; ++i) free(blocks[i]);
  pause_ms(150);
  free(malloc(10));
}

static pthread_barrier_t g_ready, g_done;

static void* idle(void* arg) {
  (void)arg;
  void* held[8];
  for (int i = 0; i < 300; ++i) free(malloc(16));  // long enough to be given headroom
  for (int i = 0; i < 8; ++i) held[i] = malloc(1000);
  pthread_barrier_wait(&g_ready);
  pthread_barrier_wait(&g_done);
  for (int i = 0; i < 8; ++i) free(held[i]);
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "burst") == 0) {
    burst();
  } else if (strcmp(mode, "burst_threads") == 0) {
    enum { kThreads = 2 };
    pthread_t threads[kThreads];
    pthread_barrier_init(&g_ready, NULL, kThreads + 1);
    pthread_barrier_init(&g_done, NULL, kThreads + 1);
    for (int i = 0; i < kThreads; ++i) pthread_create(&threads[i], NULL, idle, NULL);
    pthread_barrier_wait(&g_ready);
    burst();
    pthread_barrier_wait(&g_done);
    for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
  } else {
    steps();
  }
  return 0;
}
