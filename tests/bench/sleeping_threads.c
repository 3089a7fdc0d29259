// N threads asleep in pause() when main returns, for the exit scan's stop of them: by ptrace, or
// by signal under a seccomp filter (as tests/programs/hl_signal_stop.h forces it). The scan's
// time is the JSON report's scan.milliseconds (stop_world.cc's comments quote it):
//   HEAPLEDGER_OPTIONS=log=none:json=/tmp/s.json LD_PRELOAD=build/lib/libheapledger.so (on one line
//   with:) build/tests/bench/sleeping_threads 4000 seccomp
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hl_signal_stop.h"

static void* sleeper(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fputs("usage: sleeping_threads N [seccomp]\n", stderr);
    return 2;
  }
  const int n = atoi(argv[1]);
  if (argc > 2 && strcmp(argv[2], "seccomp") == 0 && hl_force_signal_stop() != 0) {
    perror("seccomp");
    return 1;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, sleeper, NULL) != 0) return perror("pthread_create"), 1;
  }
  return 0;
}
