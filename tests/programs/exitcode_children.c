// A test that runs a leaky tool: the process runs itself again with "child" (fork, then exec),
// waits for it and prints "child exited N"; the child leaks 10 bytes from child_leak_site and
// exits 0. With leak_exitcode the child's status is that code, as it is for every process,
// unless exitcode_pid names the parent (heapledger run --started-only).
//   exitcode_children          the parent leaks nothing, exits 0
//   exitcode_children leak     the parent leaks 20 bytes from parent_leak_site too, exits 0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) static void child_leak_site(void) { hl_sink(malloc(10)); }
__attribute__((noinline)) static void parent_leak_site(void) { hl_sink(malloc(20)); }

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) {
    child_leak_site();
    return 0;
  }
  fflush(stdout);
  const pid_t child = fork();
  if (child < 0) return 2;
  if (child == 0) {
    execl("/proc/self/exe", argv[0], "child", (char*)NULL);
    _exit(127);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 2;
  printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  if (argc > 1 && strcmp(argv[1], "leak") == 0) parent_leak_site();
  return 0;
}
