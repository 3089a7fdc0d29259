// Leaks 64 bytes, then lowers its own address-space limit to what it uses plus 8 MiB (as a
// program that caps itself might) and exits normally. Under heapledger there is no room left for
// the reporter: one line must say so, and the program's output and exit status stay its own.
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(void) {
  void* volatile leaked = malloc(64);
  (void)leaked;
  FILE* statm = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (!statm || fscanf(statm, "%lu", &pages) != 1) return 2;
  fclose(statm);
  struct rlimit limit;
  getrlimit(RLIMIT_AS, &limit);
  limit.rlim_cur = pages * 4096 + (8ul << 20);
  if (setrlimit(RLIMIT_AS, &limit) != 0) return 3;
  puts("tight_limit_at_exit: done");
  return 0;
}
