// Threads whose TLS destructor runs after heapledger's own thread-exit work (its key was created
// later) and frees a block, and, in the last thread, leaks one from late_leak_site (its stack:
// late_leak_site, late_destructor, then the C library's thread end). A walk there by libunwind
// made a per-thread cache of 256 KiB that nothing freed (2,000 threads: 536 MB resident).
// Prints its resident memory in kB: "late_tls_destructor: rss N".
//   late_tls_destructor [THREADS]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t g_late;
static int g_threads;
static void* volatile g_sink;

__attribute__((noinline)) void late_leak_site(void) { g_sink = malloc(77); g_sink = NULL; }

static void late_destructor(void* value) {
  free(value);
  if (__atomic_sub_fetch(&g_threads, 1, __ATOMIC_RELAXED) == 0) late_leak_site();
}

static void* worker(void* arg) {
  void* blocks[200];
  for (int i = 0; i < 200; ++i) blocks[i] = malloc(16 + (size_t)i * 8);
  for (int i = 0; i < 200; ++i) free(blocks[i]);
  pthread_setspecific(g_late, malloc(100));
  return arg;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2000;
  g_threads = threads;
  free(malloc(1));  // heapledger's own keys first
  pthread_key_create(&g_late, late_destructor);
  for (int i = 0; i < threads; ++i) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
  }
  char line[256];
  FILE* status = fopen("/proc/self/status", "r");
  while (status && fgets(line, sizeof line, status))
    if (!strncmp(line, "VmRSS:", 6)) printf("late_tls_destructor: rss %ld\n", atol(line + 6));
  if (status) fclose(status);
  return 0;
}
