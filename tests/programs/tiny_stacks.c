// Threads with the smallest stacks glibc allows (PTHREAD_STACK_MIN, 16 KiB), allocating through
// a recursion: the library's static TLS comes out of each of these stacks, and its allocation
// path runs on them. Each thread leaks one 40-byte block at tiny_leak.
//   tiny_stacks [BYTES]   with BYTES, each thread also leaks 24 bytes at deep_leak, called with
//                         BYTES of its stack in use (plain glibc runs up to about 8 KiB here)
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

enum { kThreads = 8 };

__attribute__((noinline)) int recurse(int n) {
  char* p = malloc((size_t)n + 1);
  memset(p, 0, (size_t)n + 1);
  int r = n ? recurse(n - 1) : 0;
  free(p);
  return r + 1;
}

__attribute__((noinline)) void tiny_leak(void) { hl_sink(malloc(40)); }

static size_t g_in_use;

__attribute__((noinline)) void deep_leak(void) {
  char* used = __builtin_alloca(g_in_use);
  memset(used, 1, g_in_use);
  hl_sink(used);
  hl_sink(malloc(24));
}

static void* thread_main(void* arg) {
  (void)arg;
  long sum = 0;
  for (int i = 0; i < 100; ++i) sum += recurse(i % 30);
  tiny_leak();
  if (g_in_use) deep_leak();
  return (void*)sum;
}

int main(int argc, char** argv) {
  g_in_use = argc > 1 ? (size_t)atol(argv[1]) : 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    int rc = pthread_create(&t[i], &attr, thread_main, NULL);
    if (rc != 0) {
      printf("pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  long sum = 0;
  for (int i = 0; i < kThreads; ++i) {
    void* r;
    pthread_join(t[i], &r);
    sum += (long)r;
  }
  printf("%ld\n", sum);
  return 0;
}
