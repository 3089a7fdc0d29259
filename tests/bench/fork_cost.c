// What fork() costs a process: allocates 2,000 small blocks, then N times forks a child that
// mallocs and frees one block and _exits, and prints the mean time of fork() in the parent and
// of fork, child and wait together. Run plain and preloaded (track=0, full) to compare: a tracked
// process's page tables and mappings are copied at every fork (tests/bench/HISTORY.md).
//   fork_cost [N]      N forks, default 400
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 400;
  if (n <= 0) return 2;
  static void* keep[2000];
  for (int i = 0; i < 2000; ++i) keep[i] = malloc(64 + (size_t)(i % 200));
  double forking = 0;
  const double start = now_s();
  for (int i = 0; i < n; ++i) {
    const double before = now_s();
    const pid_t child = fork();
    if (child == 0) {
      free(malloc(10));
      _exit(0);
    }
    forking += now_s() - before;
    if (child < 0) return 1;
    waitpid(child, NULL, 0);
  }
  const double all = now_s() - start;
  printf("fork() %.1f us, fork+child+wait %.1f us\n", forking * 1e6 / n, all * 1e6 / n);
  for (int i = 0; i < 2000; ++i) free(keep[i]);
  return 0;
}
