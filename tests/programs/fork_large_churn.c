// Threads churn large blocks (their registry grows and shrinks its table, which maps memory)
// and small ones, calloc and malloc, while main forks; every child allocates, frees and exits.
// A fork handler that takes the registry of internal mappings before the pools' large-block
// lock deadlocks against a thread growing that table (seen in review).
//   fork_large_churn THREADS FORKS
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* churn(void* arg) {
  unsigned s = (unsigned)(uintptr_t)arg;
  void* keep[4] = {0};
  for (;;) {
    s = s * 1103515245u + 12345u;
    int i = (s >> 8) % 4;
    free(keep[i]);
    size_t n = (s >> 12) % 3 == 0 ? 40 : 64 * 1024 + ((s >> 4) % (2 << 20));
    keep[i] = (s >> 20) & 1 ? calloc(1, n) : malloc(n);
    if (keep[i]) memset(keep[i], 1, 32);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 3;
  int forks = argc > 2 ? atoi(argv[2]) : 300;
  for (int i = 0; i < threads; ++i) {
    pthread_t t;
    pthread_create(&t, NULL, churn, (void*)(uintptr_t)(i + 1));
  }
  int bad = 0;
  for (int f = 0; f < forks; ++f) {
    pid_t p = fork();
    if (p == 0) {
      void* a = malloc(1 << 20);
      void* b = calloc(1, 300000);
      free(a);
      free(b);
      a = malloc(5000000);
      memset(a, 2, 5000000);
      free(a);
      _exit(0);
    }
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) ++bad;
  }
  printf("%d forks, %d bad\n", forks, bad);
  fflush(stdout);
  _exit(bad != 0);  // the workers never stop: leave without the exit report
}
