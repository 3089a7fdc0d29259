// After fork, the child leaks 222 bytes from child_leak() and leaves through exit(); the parent
// waits for it, then leaks 111 bytes from parent_leak(). Each process writes its own report.
// Exit status 0 when the child exited with status 0.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) void parent_leak(void) {
  void* p = malloc(111);
  hl_sink(p);
}

__attribute__((noinline)) void child_leak(void) {
  void* p = malloc(222);
  hl_sink(p);
}

__attribute__((noinline)) static void churn(void) {
  for (int i = 0; i < 100; ++i) {
    void* p = malloc((size_t)(i * 13 + 1));
    hl_sink(p);
    free(p);
  }
}

int main(void) {
  churn();
  fflush(stdout);
  // Past the first ticks of the coarse clock reports' times are read from (1-4 ms): the child's
  // forked_ms is then more than 0 (a quick machine forked within the first tick: 0.0).
  usleep(20000);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    churn();
    child_leak();
    printf("leak_fork: child leaked 222 bytes\n");
    fflush(stdout);
    exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 2;
  churn();
  parent_leak();
  printf("leak_fork: parent leaked 111 bytes, child status %d\n",
         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
