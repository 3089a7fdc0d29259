// exit() from a SIGALRM handler that may interrupt malloc or free: the process must exit, never
// hang on a lock its own interrupted allocation holds.
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/time.h>
static void on_alarm(int s) { (void)s; exit(0); }
int main(void) {
  signal(SIGALRM, on_alarm);
  struct itimerval t = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &t, 0);
  void* keep[256] = {0};
  for (unsigned long i = 0;; ++i) { unsigned k = (i * 2654435761u) & 255; free(keep[k]); keep[k] = malloc(16 + (i % 3000)); }
}
