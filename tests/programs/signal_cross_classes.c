// Threads that each churn blocks of two neighbouring size classes, under a 20 us timer of their
// own whose handler mallocs a block of the smaller class: a handler often lands while its thread
// is inside the pools' central lists of one class (refilling or flushing it), and another
// thread's handler while that thread is inside the lists of the other. The handler's blocks are
// freed by the thread. Prints "signal_cross_classes: N threads x M rounds".
//   signal_cross_classes [THREADS [ROUNDS]]
// Run plainly it hangs within seconds: glibc's malloc is not async-signal-safe, and a handler
// that lands while its thread holds its arena's lock waits for that lock for good (gdb: both
// workers in __lll_lock_wait_private under on_tick, below an interrupted _int_malloc). It is
// meant for the preload only, whose pools a handler may call into.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { kSmall = 20000, kLarge = 24000, kKept = 1024 };  // 20,480- and 24,576-byte classes
static int g_rounds = 5000;
static __thread void* t_kept[kKept];
static __thread volatile int t_kept_n;

static void on_tick(int sig) {
  (void)sig;
  void* p = malloc(kSmall);
  if (!p) {
    static const char kMessage[] = "signal_cross_classes: malloc failed in a handler\n";
    (void)!write(2, kMessage, sizeof kMessage - 1);
    _exit(3);
  }
  if (t_kept_n < kKept)
    t_kept[t_kept_n++] = p;
  else
    free(p);
}

static void* worker(void* arg) {
  (void)arg;
  timer_t timer;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  ev.sigev_signo = SIGUSR1;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
    perror("timer_create");
    exit(2);
  }
  struct itimerspec every = {{0, 20000}, {0, 20000}};
  timer_settime(timer, 0, &every, NULL);
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  for (int round = 0; round < g_rounds; ++round) {
    void* small[8];
    void* large[8];
    for (int i = 0; i < 8; ++i) small[i] = malloc(kSmall);
    for (int i = 0; i < 8; ++i) large[i] = malloc(kLarge);
    for (int i = 0; i < 8; ++i) free(small[i]);
    for (int i = 0; i < 8; ++i) free(large[i]);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);  // the handler's list, taken without it
    void* kept[kKept];
    const int n = t_kept_n;
    memcpy(kept, t_kept, sizeof(void*) * (size_t)n);
    t_kept_n = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int i = 0; i < n; ++i) free(kept[i]);
  }
  timer_delete(timer);
  return NULL;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (argc > 2) g_rounds = atoi(argv[2]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_tick;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  pthread_t t[16];
  for (int i = 0; i < threads && i < 16; ++i) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < threads && i < 16; ++i) pthread_join(t[i], NULL);
  printf("signal_cross_classes: %d threads x %d rounds\n", threads, g_rounds);
  return 0;
}
