// A child forked from a multi-threaded parent has one thread: the forking one. The copies of the
// parent's other threads' stacks are roots in the child (README, "What the report tells you"):
// memcheck and LSan call what only they hold lost. Here the fork comes from a thread that is not
// the main one:
//   - 3 workers each hold worker_holds(100 + i) on their stacks (303 bytes in 3 blocks);
//   - main holds main_holds(77) on its stack;
//   - the forking thread holds forker_holds(55) on its stack.
// The child exits at once: all 435 bytes in 5 blocks are still reachable in its report, nothing
// is lost. The parent frees everything and leaks nothing.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kWorkers = 3 };

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ready = 0, g_done = 0;

__attribute__((noinline)) void* worker_holds(size_t n) { return malloc(n); }
__attribute__((noinline)) void* main_holds(size_t n) { return malloc(n); }
__attribute__((noinline)) void* forker_holds(size_t n) { return malloc(n); }

// The address lives only in this frame while the thread waits for the parent to finish.
static void* worker(void* arg) {
  void* volatile held = worker_holds(100 + (size_t)arg);
  pthread_mutex_lock(&g_mu);
  ++g_ready;
  pthread_cond_broadcast(&g_cv);
  while (!g_done) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  free(held);
  return NULL;
}

static void* forker(void* arg) {
  (void)arg;
  void* volatile held = forker_holds(55);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (held == NULL) _exit(3);
    exit(0);  // the child's report: written here, on this thread's stack
  }
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  free(held);
  return (void*)(long)(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  void* volatile held = main_holds(77);
  pthread_t workers[kWorkers], f;
  for (long i = 0; i < kWorkers; ++i)
    if (pthread_create(&workers[i], NULL, worker, (void*)i) != 0) return 2;
  pthread_mutex_lock(&g_mu);
  while (g_ready < kWorkers) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);

  void* child_ok = NULL;
  if (pthread_create(&f, NULL, forker, NULL) != 0 || pthread_join(f, &child_ok) != 0) return 2;

  pthread_mutex_lock(&g_mu);
  g_done = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < kWorkers; ++i) pthread_join(workers[i], NULL);
  free(held);
  printf("fork_dead_stacks: child %s\n", child_ok ? "exited 0" : "failed");
  return child_ok ? 0 : 1;
}
