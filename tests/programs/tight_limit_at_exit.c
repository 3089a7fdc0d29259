// Leaks 64 bytes, then uses up its address space to within 8 MiB of its limit and exits
// normally. With no argument the limit is one it was started under (ulimit -v): under
// heapledger there is then no room left for the reporter, one line must say so, and the
// program's output and exit status stay its own. With `lower` it first lowers its own limit,
// soft and hard, to what it uses plus 8 MiB (as a program that caps itself might): heapledger
// keeps room of its own under a limit the program set, and the report is written.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static void* map_none(size_t bytes) {
  void* p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char** argv) {
  void* volatile leaked = malloc(64);
  (void)leaked;
  if (argc > 1 && strcmp(argv[1], "lower") == 0) {
    FILE* statm = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!statm || fscanf(statm, "%lu", &pages) != 1) return 2;
    fclose(statm);
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = pages * 4096 + (8ul << 20);
    if (setrlimit(RLIMIT_AS, &limit) != 0) return 3;
  }
  // 8 MiB kept aside, everything else under the limit taken (address space only), then the
  // 8 MiB given back.
  void* aside = map_none(8ul << 20);
  if (!aside) return 4;
  for (size_t chunk = 1ul << 46; chunk >= 4096; chunk /= 2)
    while (map_none(chunk)) {
    }
  munmap(aside, 8ul << 20);
  puts("tight_limit_at_exit: done");
  return 0;
}
