// What one page fault costs on this machine: touches N fresh pages of an anonymous mapping and
// prints the mean time per page; then the same for N pages faulted in 64 KiB at a time ahead of
// the writes (MADV_POPULATE_WRITE, as the pools and the tracker's tables do: docs/internals.md,
// "Page faults while growing"). Short processes under heapledger pay per page their tables touch
// (docs/internals.md, "Page faults at start and exit"). Last, the first page of each of N ranges
// 1 GiB apart (as the pools' first block of a size class, and its ledger slots, lie: the kernel
// makes page tables for it too), written or faulted in with the advice first, and the mprotect
// that made each writable; then written alone at spacings from 8 KiB to the pools' 64 GiB.
//   fault_cost [N]      N pages, default 1000
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MADV_POPULATE_WRITE_ 23  // Linux 5.14; not in every libc's headers

static double elapsed_ns(const struct timespec* a, const struct timespec* b) {
  return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

// Mean microseconds a page to write n fresh pages, prefaulting `step` pages at a time first
// (0: none); -1 if the mapping or the advice failed.
static double cost(long n, long page, long step) {
  char* p =
      mmap(NULL, (size_t)(n * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  volatile char* v = p;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i) {
    if (step && i % step == 0) {
      const long pages = n - i < step ? n - i : step;
      if (madvise(p + i * page, (size_t)(pages * page), MADV_POPULATE_WRITE_) != 0) return -1;
    }
    v[i * page] = 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  munmap(p, (size_t)(n * page));
  return elapsed_ns(&a, &b) / 1e3 / (double)n;
}

// The same for the first page of n ranges `apart` bytes apart in one reservation (PROT_NONE,
// made writable range by range, as the pools commit: the mean of those mprotect calls in
// *protect_us); populate: the advice before the write.
static double first_page_cost(long n, long page, size_t apart, int populate, double* protect_us) {
  char* p =
      mmap(NULL, apart * (size_t)n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i)
    if (mprotect(p + apart * (size_t)i, (size_t)page, PROT_READ | PROT_WRITE) != 0) return -1;
  clock_gettime(CLOCK_MONOTONIC, &b);
  *protect_us = elapsed_ns(&a, &b) / 1e3 / (double)n;
  volatile char* v = p;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i) {
    if (populate && madvise(p + apart * (size_t)i, (size_t)page, MADV_POPULATE_WRITE_) != 0)
      return -1;
    v[apart * (size_t)i] = 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  munmap(p, apart * (size_t)n);
  return elapsed_ns(&a, &b) / 1e3 / (double)n;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1000;
  const long page = sysconf(_SC_PAGESIZE);
  if (n <= 0 || page <= 0) return 2;
  const double each = cost(n, page, 0);
  if (each < 0) return 1;
  printf("%ld page faults: %.1f us each\n", n, each);
  const double ahead = cost(n, page, 65536 / page);
  if (ahead < 0)
    printf("prefaulting: not offered by this kernel\n");
  else
    printf("%ld pages prefaulted 64 KiB at a time: %.1f us each\n", n, ahead);
  const long ranges = n < 200 ? n : 200;
  double protect = 0, protect_again = 0;
  const double first = first_page_cost(ranges, page, (size_t)1 << 30, 0, &protect);
  const double populated = first_page_cost(ranges, page, (size_t)1 << 30, 1, &protect_again);
  if (first >= 0 && populated >= 0)
    printf(
        "first page of %ld ranges 1 GiB apart: %.1f us each written, %.1f us each faulted in "
        "first; %.1f us each to make it writable (mprotect)\n",
        ranges, first, populated, protect);
  // What sharing page tables saves: ranges close enough to share a page of page-table entries
  // (2 MiB), one a page-table page apiece, one a page-middle-directory page too (1 GiB), and the
  // pools' own spacing (a size class's range: 64 GiB).
  const size_t kApart[] = {(size_t)8 << 10, (size_t)2 << 20, (size_t)1 << 30, (size_t)64 << 30};
  const char* const kNames[] = {"8 KiB", "2 MiB", "1 GiB", "64 GiB"};
  for (int k = 0; k < 4; ++k) {
    double unused = 0;
    const double cost_k = first_page_cost(ranges < 64 ? ranges : 64, page, kApart[k], 0, &unused);
    if (cost_k >= 0)
      printf("first page of %ld ranges %s apart: %.1f us each written\n", ranges < 64 ? ranges : 64,
             kNames[k], cost_k);
  }
  return 0;
}
