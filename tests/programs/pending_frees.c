// A worker thread allocates a few blocks and frees them in a row, then blocks for good before
// main exits (or forks): its last frees are still pending in heapledger (in a run of frees, a
// small block's free is settled when 8 more frees came or its thread allocates, so that the
// block's ledger record has arrived from memory). The exit scan, or the forked child, must settle them: none of the worker's blocks is
// a leak, the counts add up, and a misuse among those last frees is still reported.
//   pending_frees exit       main leaks one 64-byte block and returns
//   pending_frees fork       main forks; the child leaks one 64-byte block and returns, then
//                            the parent does the same
//   pending_frees misuse     the worker's last frees include a double free and a mismatched
//                            one (a malloc'd block freed through operator delete)
//   pending_frees realloc    no worker: main frees a block and reallocs it (a double free: the
//                            free must be settled before realloc looks at the block)
//   pending_frees peak       no worker: main frees five 2,000-byte blocks in a row, then
//                            allocates one of 30,000 (the peak): that settles the frees first
//   pending_frees joined     the worker ends instead of blocking (its exit settles them), and
//                            main joins it
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

static sem_t g_done;
static int g_misuse, g_joined;
static void (*g_delete_one)(void*);  // operator delete, looked up before (dlsym may allocate)

__attribute__((noinline)) static void* worker_alloc(size_t n) { return malloc(n); }
__attribute__((noinline)) static void first_free_site(void* p) { free(p); }
__attribute__((noinline)) static void second_free_site(void* p) { free(p); }
__attribute__((noinline)) static void wrong_delete_site(void* p) {
  g_delete_one(p);
  __asm__ volatile("");  // no tail call: this frame stays on the stack
}

static void* worker(void* arg) {
  (void)arg;
  void* blocks[5];
  for (int i = 0; i < 5; ++i) blocks[i] = worker_alloc(100);
  void* twice = g_misuse ? worker_alloc(30) : NULL;
  void* wrong = g_misuse ? worker_alloc(40) : NULL;
  for (int i = 0; i < 5; ++i) free(blocks[i]);  // all but the first of the run wait
  if (g_misuse) {
    first_free_site(twice);
    second_free_site(twice);
    wrong_delete_site(wrong);
  }
  sem_post(&g_done);
  if (g_joined) return NULL;
  for (;;) pause();
  return NULL;
}

__attribute__((noinline)) static void leak(void) { hl_sink(malloc(64)); }

__attribute__((noinline)) static void* realloc_freed_site(void* p) { return realloc(p, 16); }
__attribute__((noinline)) static void* freed_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* kept_site(size_t n) { return malloc(n); }

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "exit";
  if (strcmp(mode, "peak") == 0) {
    void* freed[5];
    for (int i = 0; i < 5; ++i) hl_sink(freed[i] = freed_site(2000));
    for (int i = 0; i < 5; ++i) free(freed[i]);
    void* kept = kept_site(30000);
    hl_sink(kept);
    free(kept);
    puts("peak: done");
    return 0;
  }
  if (strcmp(mode, "realloc") == 0) {
    void* before = malloc(24);
    void* p = malloc(24);
    hl_sink(p);
    free(before);
    free(p);  // the second free of a run: it waits
    void* q = realloc_freed_site(p);
    printf("realloc of a freed block: %s\n", q ? "a block" : "NULL");
    return 0;
  }
  g_misuse = strcmp(mode, "misuse") == 0;
  g_joined = strcmp(mode, "joined") == 0;
  g_delete_one = (void (*)(void*))dlsym(RTLD_DEFAULT, "_ZdlPv");
  if (g_misuse && !g_delete_one) return 2;
  sem_init(&g_done, 0, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  while (sem_wait(&g_done) != 0) {
  }
  if (g_joined && pthread_join(t, NULL) != 0) return 1;
  if (strcmp(mode, "fork") == 0) {
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
      leak();
      return 0;
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 1;
  }
  leak();
  printf("pending_frees %s: main done\n", mode);
  fflush(stdout);
  return 0;
}
