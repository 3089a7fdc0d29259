// A fast interval timer (a no-op SIGALRM handler every 50 us) and a thread waiting in vfork()
// for a child that sleeps 1 s, while main leaks 77 bytes and returns. The thread in vfork cannot
// be stopped for the exit scan, which must give up on it in time; the timer's signals end every
// sleep of the thread that waits for the scan's helper early (a wait counted in sleeps gave up
// at once, and the helper and the scan then waited for each other for good).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hl_sink.h"

static void on_alarm(int sig) { (void)sig; }

static int g_ready[2];  // the vfork child says it runs (so its parent thread waits in vfork)

static void* spawn(void* arg) {
  (void)arg;
  pid_t child = vfork();
  if (child == 0) {
    (void)!write(g_ready[1], "x", 1);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    _exit(0);
  }
  if (child > 0) waitpid(child, NULL, 0);
  return NULL;
}

__attribute__((noinline)) static void leak_site(void) { hl_sink(malloc(77)); }

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval every = {{0, 50}, {0, 50}};
  setitimer(ITIMER_REAL, &every, NULL);
  if (pipe(g_ready) != 0) return 1;
  pthread_t t;
  if (pthread_create(&t, NULL, spawn, NULL) != 0) return 1;
  char c;
  while (read(g_ready[0], &c, 1) < 0) {  // the timer's signals interrupt it
  }
  leak_site();
  puts("vfork_timer: main done");
  fflush(stdout);
  return 0;
}
