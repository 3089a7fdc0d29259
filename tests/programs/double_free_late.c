// A 3000-byte block freed, then 95 MiB of 1000-byte blocks allocated and freed (the quarantine
// lets the first block go long before), then the first block freed again. Nothing reused it (no
// other allocation of its class), so the second free is still told apart: refused, and shown
// with the stacks of its allocation and of its first free.
//   double_free_late [write]   write: the program also writes over the freed block's first 64
//                              bytes (a use after free) before it frees it again
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void first_free_site(void* p) { free(p); }
__attribute__((noinline)) void late_second_free_site(void* p) { free(p); }

int main(int argc, char** argv) {
  void* volatile block = malloc(3000);
  first_free_site(block);
  if (argc > 1 && strcmp(argv[1], "write") == 0) memset(block, 0x5a, 64);
  for (int i = 0; i < 100000; ++i) {
    void* volatile other = malloc(1000);
    free(other);
  }
  late_second_free_site(block);
  return 0;
}
