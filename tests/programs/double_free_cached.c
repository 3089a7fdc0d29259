// A small block freed twice in a row, then two blocks of its size allocated: with nothing held
// back (quarantine_mb=0) the block sits in the thread's cache when it is freed again, and the
// pools themselves check nothing, so the tracker must refuse the second free before they see it.
// Prints "double_free_cached: one block handed out twice" if it did not, then "... done".
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void double_free_site(void* p) { free(p); }

int main(void) {
  void* volatile a = malloc(24);
  free(a);
  double_free_site(a);
  void* x = malloc(24);
  void* y = malloc(24);
  if (x == y) printf("double_free_cached: one block handed out twice\n");
  free(x);
  free(y);
  printf("double_free_cached: done\n");
  return 0;
}
