// More threads alive at exit than the leak scan stops (4096): N threads (default 4200) wait on a
// condition that never comes while main leaks one 555-byte block (over_limit_site) and returns.
//   threads_over_limit [N]
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_never = PTHREAD_COND_INITIALIZER;
static int g_started;

__attribute__((noinline)) void* over_limit_site(void) {
  void* p = malloc(555);
  if (p) memset(p, 5, 555);
  return p;
}

static void* wait_for_ever(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_lock);
  ++g_started;
  for (;;) pthread_cond_wait(&g_never, &g_lock);
  return NULL;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 4200;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 4 * PTHREAD_STACK_MIN);
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, wait_for_ever, NULL) != 0) {
      printf("pthread_create failed at %d\n", i);
      return 1;
    }
  }
  for (;;) {  // every thread waiting
    pthread_mutex_lock(&g_lock);
    const int started = g_started;
    pthread_mutex_unlock(&g_lock);
    if (started == n) break;
  }
  void* volatile lost = over_limit_site();
  lost = NULL;
  (void)lost;
  printf("%d threads\n", n);
  return 0;
}
