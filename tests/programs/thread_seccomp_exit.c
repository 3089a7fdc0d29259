// A worker installs a seccomp filter of its own (no TSYNC: the other threads have none) that
// kills the process on clone(), leaks 55 bytes and calls exit(0), so the exit report runs on a
// thread with a filter. The scan must not clone its ptrace helper there: the main thread's
// /proc/self/status said "no filter", and the process died of SIGSYS with no report.
// (pthread_create uses clone3, which the filter allows.)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_seccomp.h"
#include "hl_sink.h"

static void* blocked(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

__attribute__((noinline)) static void leak_site(void) { hl_sink(malloc(55)); }

static void* worker(void* arg) {
  (void)arg;
  if (hl_kill_on_syscall(SYS_clone) != 0) {
    perror("seccomp");
    _exit(9);
  }
  leak_site();
  puts("thread_seccomp_exit: worker exits");
  fflush(stdout);
  exit(0);
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, blocked, NULL) != 0 || pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_join(t, NULL);
  return 1;  // not reached: the worker ends the process
}
