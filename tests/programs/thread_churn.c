// Robustness under threads: mode 0 forks 200 times while four threads churn the allocator (no
// child may hang or die); mode 1 calls exit(3) while they are still churning (the exit scan must
// stop them, and blocks they hold on their stacks are reachable, not leaked).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int stop;

static void* churn(void* arg) {
  (void)arg;
  unsigned x = 1;
  void* keep[64] = {0};  // on this thread's stack: reachable while it runs
  while (!stop) {
    x = x * 1103515245u + 12345u;
    int k = (x >> 8) & 63;
    free(keep[k]);
    keep[k] = malloc((x >> 16) % 5000);
  }
  for (int k = 0; k < 64; ++k) free(keep[k]);
  return 0;
}
int main(int argc, char** argv) {
  int mode = argc > 1 ? atoi(argv[1]) : 0;
  pthread_t t[4]; for (int i = 0; i < 4; ++i) pthread_create(&t[i], 0, churn, 0);
  if (mode == 1) { usleep(50000); printf("exiting with threads running\n"); fflush(stdout); exit(3); }
  for (int i = 0; i < 200; ++i) {
    pid_t p = fork();
    if (p == 0) { void* q = malloc(100); free(q); char* s = malloc(10); s[0] = 0; _exit(0); }
    int st; waitpid(p, &st, 0); if (!WIFEXITED(st)) { printf("child %d died\n", i); return 1; }
  }
  stop = 1; for (int i = 0; i < 4; ++i) pthread_join(t[i], 0);
  printf("forks ok\n"); return 0;
}
