// A 3000-byte block freed, then 95 MiB of 1000-byte blocks allocated and freed (the quarantine
// lets the first block go long before), then the first block freed again. Nothing reused it (no
// other allocation of its class), so the second free is still told apart: refused, and shown
// with the stacks of its allocation and of its first free.
#include <stdlib.h>

__attribute__((noinline)) void first_free_site(void* p) { free(p); }
__attribute__((noinline)) void late_second_free_site(void* p) { free(p); }

int main(void) {
  void* volatile block = malloc(3000);
  first_free_site(block);
  for (int i = 0; i < 100000; ++i) {
    void* volatile other = malloc(1000);
    free(other);
  }
  late_second_free_site(block);
  return 0;
}
