// Threads that allocate a little and exit, each under a 20 us timer of its own whose handler
// mallocs (mode 'm'), frees a block the thread allocated (mode 'f'), or both (mode 'b'): the
// signal lands in the pools' thread-exit flush often enough, which must hand each bin over before
// a handler can take from it or add to it. Prints "signal_thread_exit: survived N threads".
//   signal_thread_exit MODE [THREADS]
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char g_mode = 'm';
static __thread void* t_spare[8];
static __thread int t_spares;

static void on_tick(int sig) {
  (void)sig;
  if (g_mode == 'm' || g_mode == 'b') {
    void* volatile p = malloc(16);
    if (g_mode == 'b') free(p);
  }
  if ((g_mode == 'f' || g_mode == 'b') && t_spares > 0) free(t_spare[--t_spares]);
}

static void* worker(void* arg) {
  timer_t* timer = arg;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  ev.sigev_signo = SIGUSR1;
  if (timer_create(CLOCK_MONOTONIC, &ev, timer) != 0) {
    perror("timer_create");
    exit(2);
  }
  for (int i = 0; i < 8; ++i) t_spare[t_spares++] = malloc(16);
  struct itimerspec every = {{0, 20000}, {0, 20000}};
  timer_settime(*timer, 0, &every, NULL);
  void* volatile p = malloc(16);
  free(p);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1) g_mode = argv[1][0];
  int threads = argc > 2 ? atoi(argv[2]) : 20000;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_tick;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  for (int i = 0; i < threads; ++i) {
    pthread_t th;
    timer_t timer;
    pthread_create(&th, NULL, worker, &timer);
    pthread_join(th, NULL);
    timer_delete(timer);
  }
  printf("signal_thread_exit: survived %d threads\n", threads);
  return 0;
}
