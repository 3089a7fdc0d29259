// A stack in a module's static data: the leak scan counted the mapping that holds a stack
// pointer from that pointer up only, so the module's globals below it were no roots, and what
// only they held came out definitely lost (a trial's). Each block here is held by a global placed
// below the stack (one struct: the order is fixed), except dropped_block's, which nothing holds.
//   altstack: the SIGTERM handler runs on the static alternate stack and calls exit() there.
//   thread:   a thread on a static stack (pthread_attr_setstack) is blocked when main exits.
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
  void* table[4096];
  char stack[1 << 18];
} g_area __attribute__((aligned(64)));
static void* volatile g_sink;
static sem_t g_never;

__attribute__((noinline)) void* held_by_global_below(void) { return malloc(1138); }
__attribute__((noinline)) void dropped_block(void) { g_sink = malloc(77), g_sink = 0; }

static void exit_on_altstack(int sig) {
  (void)sig;
  exit(0);
}

static void* blocked(void* unused) {
  (void)unused;
  sem_wait(&g_never);
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "altstack";
  g_area.table[4000] = held_by_global_below();
  dropped_block();
  if (strcmp(mode, "thread") == 0) {
    sem_init(&g_never, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, g_area.stack, sizeof g_area.stack);
    pthread_t t;
    pthread_create(&t, &attr, blocked, NULL);
    printf("thread started\n");
    fflush(stdout);
    exit(0);
  }
  stack_t ss = {.ss_sp = g_area.stack, .ss_size = sizeof g_area.stack};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = exit_on_altstack;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGTERM, &sa, NULL);
  printf("raising\n");
  fflush(stdout);
  raise(SIGTERM);
  return 1;
}
