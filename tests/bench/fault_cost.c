// What one page fault costs on this machine: touches N fresh pages of an anonymous mapping and
// prints the mean time per page. Short processes under heapledger pay per page their tables
// touch (README, "Page faults at start and exit").
//   fault_cost [N]      N pages, default 1000
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1000;
  const long page = sysconf(_SC_PAGESIZE);
  if (n <= 0 || page <= 0) return 2;
  volatile char* p =
      mmap(NULL, (size_t)(n * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i) p[i * page] = 1;
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
  printf("%ld page faults: %.1f us each\n", n, ns / 1e3 / (double)n);
  return 0;
}
