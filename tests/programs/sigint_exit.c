// Ends itself from a SIGINT handler with _exit(4), as pigz does. The handler has System V
// semantics (sysv_signal: the disposition goes back to the default as the handler starts), so a
// second SIGINT that comes while the process is on its way out finds the default action. Leaks
// SITES blocks of 10 + d bytes, each from its own call stack (recursion depth d): with SITES 200
// its text report is larger than a pipe holds, and while nobody reads its stderr the process
// stays on its way out. A second thread waits too (pigz's workers): a signal sent to the process
// goes to any thread that does not block it. Prints "ready" and waits for the signal.
//   sigint_exit SITES
#define _GNU_SOURCE  // sysv_signal
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hl_sink.h"

static void cut_short(int sig) {
  (void)sig;
  _exit(4);
}

static void* wait_for_ever(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  const int sites = argc > 1 ? atoi(argv[1]) : 200;
  for (int d = 0; d < sites; ++d) hl_leak_at_depth(d, 10 + d);
  if (sysv_signal(SIGINT, cut_short) == SIG_ERR) return 1;
  pthread_t worker;
  if (pthread_create(&worker, NULL, wait_for_ever, NULL) != 0) return 1;
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
