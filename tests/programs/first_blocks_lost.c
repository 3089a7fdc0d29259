// Loses 20 blocks of each size from 1 to 128 bytes, its first allocations: the first blocks of
// the smallest classes, which are what anything heapledger allocated and freed before main
// left behind (a logger's buffers: a user trial's). All 2,560 (165,120 bytes) are definitely
// lost whatever heapledger said at start.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void lose_blocks(void) {
  for (int size = 1; size <= 128; ++size)
    for (int i = 0; i < 20; ++i) {
      char* volatile p = malloc((size_t)size);
      memset(p, 0, (size_t)size);
      p = NULL;
    }
}

int main(void) {
  lose_blocks();
  puts("lost 2560 blocks");
  return 0;
}
