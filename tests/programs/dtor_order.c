// Linked with libdtor_lib.so (dtor_lib.c), whose destructor runs after the program's: see there.
// With WATCHDOG set, an exit handler starts a thread that ends the process with _exit(0) 100 ms
// later, while the library's destructors may still run. With LATE_ABORT, a detached thread waits
// for the library's destructor to be done, then calls abort() (as one tripping over what the
// destructors took down): the exit report is being written by then.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void* watchdog(void* arg) {
  (void)arg;
  usleep(100 * 1000);
  _exit(0);
}

extern volatile int g_lib_ended;

static void* late_abort(void* arg) {
  (void)arg;
  while (!g_lib_ended) usleep(100);
  abort();
}

static void start_watchdog(void) {
  pthread_t t;
  pthread_create(&t, NULL, watchdog, NULL);
}

void lib_setup(void);

int main(void) {
  lib_setup();
  if (getenv("WATCHDOG")) atexit(start_watchdog);
  if (getenv("LATE_ABORT")) {
    pthread_t t;
    pthread_create(&t, NULL, late_abort, NULL);
    pthread_detach(t);
  }
  puts("dtor_order: done");
  return 0;
}
