// A process that ends while its exit report is being written: main leaks one 100-byte block and
// returns while a watchdog thread sleeps; if the sleep ends early (the leak scan's signal
// interrupts it), the watchdog calls exit(7) at once, while main is still writing the report.
// Plain, it exits 0 and the watchdog never wakes.
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>

static void* watchdog(void* arg) {
  (void)arg;
  if (sleep(30) > 0) exit(7);  // woken early
  return NULL;
}

__attribute__((noinline)) void* leak_site(void) { return malloc(100); }

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, watchdog, NULL) != 0) return 1;
  usleep(20000);  // the watchdog is asleep
  void* volatile leaked = leak_site();
  (void)leaked;
  leaked = NULL;
  puts("exit_while_reporting: main done");
  return 0;
}
