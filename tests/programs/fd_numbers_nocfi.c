// Built without unwind information (tests/programs/CMakeLists.txt): a frame the stack walk
// cannot step over by its rules, where libunwind checks every address it reads.
#include <stdlib.h>

__attribute__((noinline)) void* alloc_without_cfi(size_t n) {
  void* p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
