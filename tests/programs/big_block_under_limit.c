// Asks for one block of MiB mebibytes (never touched, so it costs address space only) and says
// whether it got it. Run under an address-space limit (ulimit -v) that leaves room for it.
//   big_block_under_limit MiB
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* volatile block = malloc((size_t)atol(argv[1]) << 20);
  puts(block ? "big_block_under_limit: got it" : "big_block_under_limit: malloc failed");
  free(block);
  return block ? 0 : 1;
}
