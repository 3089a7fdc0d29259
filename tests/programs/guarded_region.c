// A block referenced only from an anonymous mapping whose first page is an inaccessible guard
// (how coroutine and fiber stacks are laid out): reachable, not leaked. Mode "fork": three
// threads churn while the program forks children that exit(); no child may report the threads'
// blocks as leaked. Mode "reserve": a block held only from one touched page in the middle of a
// 4 GiB reservation the program never touches otherwise: reachable (the scan skips the
// untouched pages, it must not skip the touched one).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

__attribute__((noinline)) void* guarded_hold(void) { return malloc(555); }
__attribute__((noinline)) void* reserved_hold(void) { return malloc(321); }

static int reserve_mode(void) {
  size_t size = (size_t)4 << 30;
  char* arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (arena == MAP_FAILED) return 77;  // overcommit disabled: nothing to test
  *(void**)(arena + size / 2) = reserved_hold();
  printf("guarded_region: reserved\n");
  return 0;
}

static void* churn(void* arg) {
  (void)arg;
  void* keep[64] = {0};  // live on this thread's stack
  unsigned x = 1;
  while (!stop) {
    x = x * 1103515245u + 12345u;
    int k = (x >> 8) & 63;
    free(keep[k]);
    keep[k] = malloc(100 + (x >> 20) % 1000);
  }
  for (int k = 0; k < 64; ++k) free(keep[k]);
  return NULL;
}

static int fork_children(void) {
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, churn, NULL);
  usleep(20000);
  for (int i = 0; i < 4; ++i) {
    pid_t p = fork();
    if (p == 0) exit(0);
    int status;
    waitpid(p, &status, 0);
  }
  stop = 1;
  for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "fork") == 0) return fork_children();
  if (argc > 1 && strcmp(argv[1], "reserve") == 0) return reserve_mode();
  char* region = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED || mprotect(region, 4096, PROT_NONE) != 0) return 1;
  *(void**)(region + 8192) = guarded_hold();
  printf("guarded_region: ok\n");
  return 0;
}
