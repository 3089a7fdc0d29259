// Double frees across threads, where each thread keeps its own batch of the quarantine:
//   first_free_site (thread A) frees a block; A waits; main's second_free_live_site frees it again
//     while A is alive (the block is still in A's own batch);
//   exit_free_site (thread B) frees a block and B exits; main's second_free_exited_site frees it
//     again after joining B (B's batch went to the shared list when it exited).
// Between the first and second frees, other threads allocate and free so that a block released
// early would likely be handed out again. Prints "double_free_threads: done" and exits 0.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* g_a;
static void* g_b;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_stage;

static void set_stage(int s) {
  pthread_mutex_lock(&g_lock);
  g_stage = s;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
}

static void wait_stage(int s) {
  pthread_mutex_lock(&g_lock);
  while (g_stage < s) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
}

__attribute__((noinline)) void first_free_site(void* p) { free(p); }
__attribute__((noinline)) void exit_free_site(void* p) { free(p); }
__attribute__((noinline)) void second_free_live_site(void* p) { free(p); }
__attribute__((noinline)) void second_free_exited_site(void* p) { free(p); }

static void churn(void) {  // same size class as the freed blocks
  void* keep[64];
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 64; ++i) keep[i] = malloc(40);
    for (int i = 0; i < 64; ++i) free(keep[i]);
  }
}

static void* thread_a(void* arg) {
  (void)arg;
  first_free_site(g_a);
  set_stage(1);
  wait_stage(2);  // alive until main has freed g_a again
  return NULL;
}

static void* thread_b(void* arg) {
  (void)arg;
  exit_free_site(g_b);  // and exits at once: g_b is still in this thread's own batch
  return NULL;
}

int main(void) {
  g_a = malloc(40);
  g_b = malloc(40);
  memset(g_a, 1, 40);
  memset(g_b, 2, 40);
  pthread_t a, b;
  if (pthread_create(&a, NULL, thread_a, NULL) != 0) return 1;
  wait_stage(1);
  churn();
  second_free_live_site(g_a);
  set_stage(2);
  pthread_join(a, NULL);
  if (pthread_create(&b, NULL, thread_b, NULL) != 0) return 1;
  pthread_join(b, NULL);
  churn();
  second_free_exited_site(g_b);
  puts("double_free_threads: done");
  return 0;
}
