// A block referenced only from the stack of a thread that is still running when the process
// exits (main calls exit() while the thread sleeps): it must be reported reachable, not leaked.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ready = 0;

__attribute__((noinline)) void* thread_holds(void) { return malloc(96); }

static void* worker(void* arg) {
  (void)arg;
  void* volatile held = thread_holds();  // lives in this frame until the process ends
  pthread_mutex_lock(&g_mu);
  g_ready = 1;
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (;;) pause();
  return (void*)held;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_mutex_lock(&g_mu);
  while (!g_ready) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  printf("reach_thread_stack: exiting with the worker still running\n");
  exit(0);
}
