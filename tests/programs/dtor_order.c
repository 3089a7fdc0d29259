// Linked with libdtor_lib.so (dtor_lib.c), whose destructor runs after the program's: see there.
// With WATCHDOG set, an exit handler starts a thread that ends the process with _exit(0) 100 ms
// later, while the library's destructors may still run.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void* watchdog(void* arg) {
  (void)arg;
  usleep(100 * 1000);
  _exit(0);
}

static void start_watchdog(void) {
  pthread_t t;
  pthread_create(&t, NULL, watchdog, NULL);
}

void lib_setup(void);

int main(void) {
  lib_setup();
  if (getenv("WATCHDOG")) atexit(start_watchdog);
  puts("dtor_order: done");
  return 0;
}
