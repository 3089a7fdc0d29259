// Leaks from named threads, for the report's per-thread parts of a leak site: pool-0 names
// itself and then leaks 1 block of 100 bytes at leak_in_worker, pool-1 leaks 2 and names itself
// after (its name is read as it ends), pool-2 leaks 3 and never names itself (the process's
// name). A thread still running at exit leaks 50 bytes at leak_while_running and is named
// "late-named" by main afterwards (read at exit). main leaks 77 at main_site. Prints each
// thread's id: "pool-0 TID", ..., "late TID", "main TID".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t tids[4];
static int ready[2], never[2];

__attribute__((noinline)) void leak_in_worker(void) {
  void* p = malloc(100);
  memset(p, 1, 100);
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void leak_while_running(void) {
  void* p = malloc(50);
  memset(p, 2, 50);
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void main_site(void) {
  void* p = malloc(77);
  memset(p, 3, 77);
  __asm__ volatile("" : : "r"(p) : "memory");
}

static void* worker(void* arg) {
  const int n = (int)(long)arg;
  tids[n] = (pid_t)syscall(SYS_gettid);
  if (n == 0) pthread_setname_np(pthread_self(), "pool-0");
  for (int i = 0; i <= n; ++i) leak_in_worker();
  if (n == 1) pthread_setname_np(pthread_self(), "pool-1");
  return NULL;
}

static void* late(void* arg) {
  (void)arg;
  tids[3] = (pid_t)syscall(SYS_gettid);
  leak_while_running();
  char c = 1;
  if (write(ready[1], &c, 1) != 1) return NULL;
  while (read(never[0], &c, 1) != 0) {
  }
  return NULL;
}

int main(void) {
  if (pipe(ready) != 0 || pipe(never) != 0) return 1;
  for (long n = 0; n < 3; ++n) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker, (void*)n) != 0) return 1;
    pthread_join(t, NULL);
  }
  pthread_t t;
  if (pthread_create(&t, NULL, late, NULL) != 0) return 1;
  char c;
  if (read(ready[0], &c, 1) != 1) return 1;
  pthread_setname_np(t, "late-named");
  main_site();
  printf("pool-0 %d\npool-1 %d\npool-2 %d\nlate %d\nmain %d\n", (int)tids[0], (int)tids[1],
         (int)tids[2], (int)tids[3], (int)getpid());
  return 0;
}
