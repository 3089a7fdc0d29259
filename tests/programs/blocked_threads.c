// Threads blocked in nanosleep, poll, select and pause when main returns (leaking one 64-byte
// block): each prints a line if its call ends early. Stopped with ptrace for the leak scan, they
// carry on sleeping (and the process ends under them, silently); stopped with a signal, every
// one of those calls returns early, as it would for any signal handler.
//   blocked_threads            as is
//   blocked_threads seccomp    under a seccomp filter that allows everything: heapledger does not
//                              use ptrace under any filter (one could kill the process for it)
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "hl_signal_stop.h"
#include "hl_sink.h"

static void said(const char* call) {
  printf("%s returned early\n", call);
  fflush(stdout);
}

static void* in_nanosleep(void* arg) {
  (void)arg;
  struct timespec ts = {30, 0};
  nanosleep(&ts, NULL);
  said("nanosleep");
  return NULL;
}

static void* in_poll(void* arg) {
  (void)arg;
  poll(NULL, 0, 30000);
  said("poll");
  return NULL;
}

static void* in_select(void* arg) {
  (void)arg;
  struct timeval tv = {30, 0};
  select(0, NULL, NULL, NULL, &tv);
  said("select");
  return NULL;
}

static void* in_pause(void* arg) {
  (void)arg;
  pause();
  said("pause");
  return NULL;
}

__attribute__((noinline)) static void leak(void) { hl_sink(malloc(64)); }

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "seccomp") == 0 && hl_force_signal_stop() != 0) {
    perror("seccomp");
    return 1;
  }
  void* (*calls[])(void*) = {in_nanosleep, in_poll, in_select, in_pause};
  for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; ++i) {
    pthread_t t;
    if (pthread_create(&t, NULL, calls[i], NULL) != 0) return 1;
  }
  usleep(50000);  // all four are blocked
  leak();
  puts("blocked_threads: main done");
  fflush(stdout);
  return 0;
}
