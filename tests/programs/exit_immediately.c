// A program that ends itself with _exit(), as dash ends every `sh -c`: its report is written
// (as memcheck writes one; LeakSanitizer does not), stdio's buffer is still dropped, and a
// forked or vforked child that ends with _exit() writes none.
//   exit_immediately          leaks 123 bytes (lost_at_exit), buffers a line it never flushes,
//                             _exit(3)
//   exit_immediately fork     a forked child leaks 55 bytes (child_leak) and _exit(0)s; the
//                             parent waits, leaks 123 bytes and _exit(3)s: one report, the parent's
//   exit_immediately vfork    a vforked child fails to exec and _exit(127)s; the parent then as
//                             above
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) void lost_at_exit(void) { hl_sink(malloc(123)); }
__attribute__((noinline)) void child_leak(void) { hl_sink(malloc(55)); }

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "fork") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      child_leak();
      _exit(0);
    }
    if (pid < 0 || waitpid(pid, NULL, 0) != pid) return 1;
  } else if (strcmp(mode, "vfork") == 0) {
    pid_t pid = vfork();
    if (pid == 0) {
      execl("/nonexistent/heapledger-test", "x", (char*)NULL);
      _exit(127);
    }
    if (pid < 0 || waitpid(pid, NULL, 0) != pid) return 1;
  }
  lost_at_exit();
  printf("exit_immediately: buffered, never flushed\n");  // stdout is a pipe: fully buffered
  _exit(3);
}
