// Still-reachable blocks across a fork. Before it: hold_before() keeps 3 blocks of 100 bytes, and
// hold_shared() one of 200. The child then calls hold_shared() again from the same call (so that
// site has one inherited block and one of its own) and hold_after() once (300 bytes), and leaves
// through exit(); the parent waits for it. Every block stays in a global: reachable in both.
// No pause around the fork: the inherited blocks and the child's come within one tick of the
// coarse clock report times are read from, and must still be told apart.
// Exit status 0 when the child exited with status 0.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void* g_kept[8];  // not static: the stores to it must stay
int g_count;

__attribute__((noinline)) void hold_before(void) {
  for (int i = 0; i < 3; ++i) g_kept[g_count++] = malloc(100);
}

__attribute__((noinline)) void hold_shared(void) { g_kept[g_count++] = malloc(200); }

__attribute__((noinline)) void hold_after(void) { g_kept[g_count++] = malloc(300); }

int main(void) {
  hold_before();
  fflush(stdout);
  pid_t pid = 0;
  volatile int rounds = 2;  // not unrolled: hold_shared() is called from one place
  for (int round = 0; round < rounds; ++round) {
    hold_shared();  // one call, one stack: in the parent before the fork, in the child after
    if (round == 0 && (pid = fork()) != 0) break;
  }
  if (pid < 0) return 2;
  if (pid == 0) {
    hold_after();
    printf("fork_reachable: child holds %d blocks\n", g_count);
    fflush(stdout);
    exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 2;
  printf("fork_reachable: parent holds %d blocks, child status %d\n", g_count,
         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
