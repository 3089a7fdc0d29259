// Two threads free the same large block at once, round after round, after the program made the
// block's first page inaccessible (a guard page). One free releases it; the other is a double
// free, told apart without reading the block (whose record the first may not have written yet).
//   free_race_guarded [ROUNDS]   prints "free_race_guarded: done" and exits 0
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static void* volatile g_block;
static pthread_barrier_t g_barrier;
static int g_rounds;

static void* freer(void* arg) {
  (void)arg;
  for (int i = 0; i < g_rounds; ++i) {
    pthread_barrier_wait(&g_barrier);
    free(g_block);
    pthread_barrier_wait(&g_barrier);
  }
  return NULL;
}

int main(int argc, char** argv) {
  g_rounds = argc > 1 ? atoi(argv[1]) : 5000;
  pthread_barrier_init(&g_barrier, NULL, 3);
  pthread_t a, b;
  if (pthread_create(&a, NULL, freer, NULL) || pthread_create(&b, NULL, freer, NULL)) return 1;
  for (int i = 0; i < g_rounds; ++i) {
    char* p = malloc(64 << 10);
    p[100] = 1;
    if (mprotect(p, 4096, PROT_NONE) != 0) return 1;
    g_block = p;
    pthread_barrier_wait(&g_barrier);  // both free it
    pthread_barrier_wait(&g_barrier);
  }
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  puts("free_race_guarded: done");
  return 0;
}
