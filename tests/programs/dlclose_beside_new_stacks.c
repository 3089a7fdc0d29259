// dlopen and dlclose of a library, over and over for SECONDS (default 2), while another thread
// allocates and frees from ever new call stacks. glibc's dlclose frees memory holding the
// loader's lock, and each new stack has heapledger look at the loaded modules: with a lock of
// heapledger's around that look, the free waited for it while its holder waited for the
// loader's lock, and the program hung at its first dlclose (a review's reproducer). Prints
// "done" and exits 0.
//   dlclose_beside_new_stacks LIBRARY [SECONDS]
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hl_sink.h"

static atomic_int g_stop;

// 2^depth stacks: each level calls one of two functions, by one bit of path.
__attribute__((noinline)) static void down_a(unsigned path, int depth);
__attribute__((noinline)) static void down_b(unsigned path, int depth);
__attribute__((noinline)) static void step(unsigned path, int depth) {
  if (depth == 0) {
    void* p = malloc(24);
    hl_sink(p);
    free(p);
  } else if (path & 1) {
    down_b(path >> 1, depth - 1);
  } else {
    down_a(path >> 1, depth - 1);
  }
  __asm__ volatile("");  // not a tail call: the frame stays on the stack
}
__attribute__((noinline)) static void down_a(unsigned path, int depth) {
  step(path, depth);
  __asm__ volatile("");
}
__attribute__((noinline)) static void down_b(unsigned path, int depth) {
  step(path, depth);
  __asm__ volatile("");
}

static void* new_stacks(void* arg) {
  (void)arg;
  for (unsigned path = 0; !atomic_load(&g_stop); ++path) step(path, 20);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s LIBRARY [SECONDS]\n", argv[0]);
    return 2;
  }
  const time_t end = time(NULL) + (argc > 2 ? atoi(argv[2]) : 2);
  pthread_t t;
  if (pthread_create(&t, NULL, new_stacks, NULL) != 0) return 2;
  while (time(NULL) < end) {
    void* handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
    dlclose(handle);
  }
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  puts("done");
  return 0;
}
