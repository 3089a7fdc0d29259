// Peak memory of many threads that each allocate from a few dozen stacks: the tracker's
// per-thread memory (the stack memo above all) times the thread count. N threads run at once,
// then N more that take over the first ones' memos.
//   thread_memory N      (peak RSS: /usr/bin/time -f %M)
#include <pthread.h>
#include <stdlib.h>

static pthread_barrier_t g_all_started;

__attribute__((noinline)) static void* nested(int depth, size_t n) {
  void* p = depth ? nested(depth - 1, n) : malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

static void* work(void* arg) {
  for (int i = 0; i < 400; ++i) free(nested(i % 40, 32));
  pthread_barrier_wait(&g_all_started);  // all N alive at once
  return arg;
}

static void generation(pthread_t* threads, int n, const pthread_attr_t* attr) {
  pthread_barrier_init(&g_all_started, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; ++i) pthread_create(&threads[i], attr, work, NULL);
  pthread_barrier_wait(&g_all_started);
  for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&g_all_started);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (n < 1) return 2;
  pthread_t* threads = malloc((size_t)n * sizeof *threads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  generation(threads, n, &attr);
  generation(threads, n, &attr);
  free(threads);
  return 0;
}
