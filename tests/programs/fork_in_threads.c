// fork() while another thread allocates and frees without pause, N times: every child allocates
// and exits; none may hang on a lock the other thread held at the moment of the fork.
//   fork_in_threads N
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void* churn(void* arg) {
  (void)arg;
  for (;;) {
    void* volatile p = malloc(32);
    free(p);
  }
  return 0;
}

int main(int argc, char** argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 300;
  pthread_t t;
  pthread_create(&t, 0, churn, 0);
  for (int i = 0; i < forks; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      void* volatile p = malloc(48);
      free(p);
      _exit(0);
    }
    int status = 0, waited = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      usleep(1000);
      if (++waited == 10000) {
        fprintf(stderr, "fork %d: child %d hung\n", i, (int)pid);
        kill(pid, SIGKILL);
        return 1;
      }
    }
  }
  printf("%d forks ok\n", forks);
  return 0;
}
