// A program run under gdb with heapledger preloaded into it: three threads allocate and free
// until the process ends, main leaks one 123-byte block from debugged_site, prints "done" and
// returns 3. gdb's ptrace is in the way of heapledger's, so the leak scan stops the threads with
// a signal; gdb must pass it on without stopping (it stopped at SIG61 and, in batch mode, killed
// the program: no report, no "done", no exit status 3).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* churn(void* arg) {
  (void)arg;
  for (;;) {
    void* volatile p = malloc(64);
    free(p);
    usleep(1000);
  }
  return NULL;
}

__attribute__((noinline)) void* debugged_site(void) {
  void* p = malloc(123);
  if (p) memset(p, 1, 123);
  return p;
}

int main(void) {
  for (int i = 0; i < 3; ++i) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0) return 1;
  }
  usleep(50000);
  void* volatile p = debugged_site();
  p = NULL;
  puts("done");
  fflush(stdout);
  return 3;
}
