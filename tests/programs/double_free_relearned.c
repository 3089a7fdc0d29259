// Blocks of every small size (16 to 1024 bytes, a step of 16) freed, then 70,000 blocks of 2000
// bytes allocated and freed (a class of their own; the quarantine, at most 65,536 blocks, lets the
// first blocks go long before), then each
// first block freed again, each from a function of its own that no stack has passed through yet:
// taking that second free's stack learns an unwind rule. When libdw read the rules, it allocated
// for that, and the pools could hand the tracker the very block being freed twice (a user trial's:
// a 200-byte block, its double free shown without its first free, or not at all while frees
// waited; libdw kept two such blocks for good, whose double frees went unreported). Rules are
// now read without allocating (tracker/eh_frame.h): every second free is refused and shown with
// the stacks of the allocation and of the first free.
//   double_free_relearned
#include <stdio.h>
#include <stdlib.h>

#define N 64

__attribute__((noinline)) void first_free_site(void* p) { free(p); }

typedef void (*Free)(void*);
// Bodies that differ, so that none is merged with another (-fipa-icf at -O2).
#define SECOND(k)                                                       \
  __attribute__((noinline)) static void second_free_site_##k(void* p) { \
    __asm__ volatile("# second free " #k ::: "memory");                 \
    free(p);                                                            \
  }
#define SECOND8(a) \
  SECOND(a##0)     \
  SECOND(a##1) SECOND(a##2) SECOND(a##3) SECOND(a##4) SECOND(a##5) SECOND(a##6) SECOND(a##7)
SECOND8(1)
SECOND8(2) SECOND8(3) SECOND8(4) SECOND8(5) SECOND8(6) SECOND8(7) SECOND8(8)
#define REF8(a)                                                                  \
  second_free_site_##a##0, second_free_site_##a##1, second_free_site_##a##2,     \
      second_free_site_##a##3, second_free_site_##a##4, second_free_site_##a##5, \
      second_free_site_##a##6, second_free_site_##a##7
    static const Free kSecond[N] = {REF8(1), REF8(2), REF8(3), REF8(4),
                                    REF8(5), REF8(6), REF8(7), REF8(8)};

int main(void) {
  void* volatile blocks[N];
  for (int k = 0; k < N; ++k) blocks[k] = malloc(16 * (size_t)(k + 1));
  for (int k = 0; k < N; ++k) first_free_site(blocks[k]);
  for (int i = 0; i < 70000; ++i) {
    void* volatile other = malloc(2000);
    free(other);
  }
  for (int k = 0; k < N; ++k) kSecond[k](blocks[k]);
  printf("double_free_relearned: done\n");
  return 0;
}
