// Blocks held only by pointers in shared memory: an anonymous shared mapping, a POSIX shared
// memory object (shm_open) and a memfd, each still mapped at exit; the memfd is 1 GiB, its
// pointer near the end, the rest never touched (the scan must not fill it in). Each is
// reachable, as memcheck has it; dropped_block's block, which nothing holds, is definitely lost.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void* volatile g_sink;

__attribute__((noinline)) void* held_in_shared_anonymous(void) { return malloc(1123); }
__attribute__((noinline)) void* held_in_shm_object(void) { return malloc(2123); }
__attribute__((noinline)) void* held_in_memfd(void) { return malloc(3123); }
__attribute__((noinline)) void dropped_block(void) { g_sink = malloc(77), g_sink = 0; }

static void** map_shared(int fd, size_t bytes) {
  void* p =
      mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return p;
}

int main(void) {
  void** anonymous = map_shared(-1, 4096);
  anonymous[20] = held_in_shared_anonymous();

  char name[64];
  snprintf(name, sizeof name, "/heapledger-test-%d", (int)getpid());
  int shm = shm_open(name, O_CREAT | O_RDWR, 0600);
  if (shm < 0 || ftruncate(shm, 1 << 20) != 0) return 2;
  shm_unlink(name);
  void** object = map_shared(shm, 1 << 20);
  object[1000] = held_in_shm_object();

  const size_t big = (size_t)1 << 30;
  int mfd = memfd_create("heapledger-test", 0);
  if (mfd < 0 || ftruncate(mfd, (off_t)big) != 0) return 2;
  void** memfd = map_shared(mfd, big);
  memfd[big / sizeof(void*) - 100] = held_in_memfd();

  dropped_block();
  printf("held\n");
  return 0;
}
