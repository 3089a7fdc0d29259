// Three joined pthreads each leak one 123-byte block from thread_leak() (369 bytes, 3 blocks,
// one call stack) and free everything else they allocate. Exit status 0.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline)) void thread_leak(void) {
  void* p = malloc(123);
  hl_sink(p);
}

__attribute__((noinline)) void thread_churn(void) {
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc((size_t)(i % 500 + 1));
    hl_sink(p);
    free(p);
  }
}

__attribute__((noinline)) void* thread_main(void* arg) {
  (void)arg;
  thread_churn();
  thread_leak();
  return NULL;
}

int main(void) {
  pthread_t threads[3];
  for (int i = 0; i < 3; ++i)
    if (pthread_create(&threads[i], NULL, thread_main, NULL) != 0) return 1;
  for (int i = 0; i < 3; ++i) pthread_join(threads[i], NULL);
  printf("leak_thread: 3 threads joined\n");
  return 0;
}
