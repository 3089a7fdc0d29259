// Several threads call exit() at the same moment while main waits in pause(): glibc lets each
// run what is left of the exit handlers, and the first to find none left ends the process, so
// the exit report (written from the last handler) was lost in every run with three threads.
//   exit_together N     N threads (default 3), thread i calls exit(10 + i)
// main leaks one 4242-byte block first (leak_site). Plain, it exits with one of 10..10+N-1.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t g_start;

__attribute__((noinline)) void* leak_site(void) {
  void* p = malloc(4242);
  if (p) memset(p, 1, 4242);
  return p;
}

static void* exit_now(void* arg) {
  pthread_barrier_wait(&g_start);
  exit(10 + (int)(long)arg);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3;
  if (n < 1 || n > 64) return 2;
  void* volatile lost = leak_site();
  lost = NULL;
  (void)lost;
  pthread_barrier_init(&g_start, NULL, (unsigned)n);
  for (long i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, NULL, exit_now, (void*)i) != 0) return 1;
  }
  for (;;) pause();
}
