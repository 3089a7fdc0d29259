// A thread whose first call is pthread_getattr_np (as every JVM thread's is): glibc holds the
// thread's lock while it allocates inside, and the stack walk for that allocation asked
// pthread_getattr_np for the stack's bounds again, waiting for the lock forever. The thread
// leaks 40 bytes after it; main prints the stack size it saw.
#define _GNU_SOURCE  // pthread_getattr_np
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline)) static void leak_site(void) { hl_sink(malloc(40)); }

static void* thread_main(void* arg) {
  (void)arg;
  pthread_attr_t attr;
  void* addr = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  leak_site();
  return (void*)size;
}

int main(void) {
  pthread_t t;
  void* size = NULL;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, &size) != 0) return 1;
  printf("thread_getattr: stack of %zu bytes\n", (size_t)size);
  return size ? 0 : 1;
}
