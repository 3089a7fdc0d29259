// Leaks 64 bytes, then uses up its address space to within 8 MiB of its limit and exits
// normally. With no argument the limit is one it was started under (ulimit -v), with `data` the
// same for its data limit (ulimit -d: the mappings it takes are writable): the reporter then
// needs the room heapledger kept for it. With `lower` it first lowers its own limit, soft and
// hard, to what it uses plus 8 MiB (as a program that caps itself might): heapledger keeps room
// of its own under a limit the program set, and the report is written. With `sites` too it
// first leaks 16 bytes from each of 65,536 call paths and keeps 40 MiB aside instead of 8: under
// ulimit -d, room to begin the report in but not to finish it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static int g_prot = PROT_NONE;

static void* map_none(size_t bytes) {
  void* p = mmap(NULL, bytes, g_prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

// 2^level call paths down to one malloc: at each level through left() or right().
static void leak_at(int level, unsigned path);
__attribute__((noinline)) static void left(int level, unsigned path) { leak_at(level, path); }
__attribute__((noinline)) static void right(int level, unsigned path) { leak_at(level, path); }
__attribute__((noinline)) static void leak_at(int level, unsigned path) {
  if (level == 0) {
    void* volatile p = malloc(16);
    (void)p;
  } else if (path & 1) {
    left(level - 1, path >> 1);
  } else {
    right(level - 1, path >> 1);
  }
}

int main(int argc, char** argv) {
  void* volatile leaked = malloc(64);
  (void)leaked;
  size_t left = 8ul << 20;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "data") == 0) g_prot = PROT_READ | PROT_WRITE;
    if (strcmp(argv[i], "sites") == 0) {
      for (unsigned path = 0; path < (1u << 16); ++path) leak_at(16, path);
      left = 40ul << 20;  // room to begin the report in, not to finish it
    }
  }
  if (argc > 1 && strcmp(argv[1], "lower") == 0) {
    FILE* statm = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!statm || fscanf(statm, "%lu", &pages) != 1) return 2;
    fclose(statm);
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = pages * 4096 + (8ul << 20);
    if (setrlimit(RLIMIT_AS, &limit) != 0) return 3;
  }
  // 8 MiB (`left`) kept aside, everything else under the limit taken (address space only), then the
  // 8 MiB given back.
  void* aside = map_none(left);
  if (!aside) return 4;
  for (size_t chunk = 1ul << 46; chunk >= 4096; chunk /= 2)
    while (map_none(chunk)) {
    }
  munmap(aside, left);
  puts("tight_limit_at_exit: done");
  return 0;
}
