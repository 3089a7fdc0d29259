// main ends first (pthread_exit) and the process runs on in a worker, which keeps a 64-byte
// block in a global, leaks a 48-byte one, and returns: the last thread's exit ends the process.
// The exit scan must still find its roots (the main thread's /proc/self files read empty by
// then), and the process's name and arguments.
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "hl_sink.h"

static void* volatile g_kept;

__attribute__((noinline)) static void keep_site(void) { g_kept = malloc(64); }
__attribute__((noinline)) static void leak_site(void) { hl_sink(malloc(48)); }

static void* worker(void* arg) {
  (void)arg;
  usleep(20000);  // main has ended
  keep_site();
  leak_site();
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_exit(NULL);
}
