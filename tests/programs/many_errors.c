// N invalid frees, each of a stack address, from bad_free_site: more heap errors than the report
// keeps with their stacks (the first 1,000). Under plain glibc the first one aborts; heapledger
// reports and refuses each, and the program prints "many_errors: done" and exits 0.
//   many_errors N
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void bad_free_site(void* p) {
  __asm__ volatile("" ::: "memory");
  free(p);
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1200;
  char local[16];
  for (long i = 0; i < n; ++i) bad_free_site(local + (i % 8));
  puts("many_errors: done");
  return 0;
}
