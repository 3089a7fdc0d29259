// Reads its address-space limit in a loop (after lowering it, so that heapledger holds its lock
// for the read) until SIGALRM's handler calls exit(). Leaks 42 bytes from lost_before_loop. The
// exit report raised the limit for its room under a lock the interrupted getrlimit held: the
// exit hung, every time.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>

static void on_alarm(int sig) {
  (void)sig;
  exit(0);
}

void* lost_before_loop(void) { return malloc(42); }

int main(void) {
  void* volatile lost = lost_before_loop();
  (void)lost;
  lost = NULL;
  struct rlimit r = {64ul << 40, RLIM_INFINITY};
  setrlimit(RLIMIT_AS, &r);
  signal(SIGALRM, on_alarm);
  struct itimerval t = {{0, 0}, {0, 50000}};
  setitimer(ITIMER_REAL, &t, NULL);
  for (;;) getrlimit(RLIMIT_AS, &r);
}
