// Threads whose last free comes from a pthread key destructor that runs after heapledger's own
// (keys created later run later): past its exit destructor, a thread must not take a counts block
// it would never give back.
//   key_destructor_frees N   runs N threads one after another; prints VmRSS (KB) after the first
//                            1,000 and after all N, one number a line
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t g_key;

static void* work(void* arg) {
  pthread_setspecific(g_key, malloc(16));
  return arg;
}

static long rss_kb(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 20000;
  if (pthread_key_create(&g_key, free) != 0) return 1;
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, NULL, work, NULL) != 0) return 1;
    pthread_join(t, NULL);
    if (i == 999) printf("%ld\n", rss_kb());
  }
  printf("%ld\n", rss_kb());
  return 0;
}
