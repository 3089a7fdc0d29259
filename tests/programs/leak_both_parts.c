// Blocks of one size class, more than its slice of the pools' starter zone holds (64 KiB: 1,336
// blocks of 48 bytes), so that each kind below has blocks in both parts of the class (the slice,
// then the class's own range), and pointers from one part into the other:
//   kept_block:    2,000 blocks of 40 bytes held by a global array -> reachable;
//   dropped_block: 3,000 blocks of 40 bytes whose pointers are dropped -> definite;
//   chain_link:    a chain of 2,000 blocks of 40 bytes, each pointing at the one made before it,
//                  whose last-made head is dropped -> 1 definite + 1,999 indirect.
// They are made interleaved, so every kind spans both parts.
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

enum { kKept = 2000, kDropped = 3000, kChain = 2000, kSize = 40 };

void* g_kept[kKept];

__attribute__((noinline)) void* kept_block(void) { return malloc(kSize); }
__attribute__((noinline)) void* dropped_block(void) { return malloc(kSize); }
__attribute__((noinline)) void* chain_link(void* next) {
  void** link = malloc(kSize);
  link[0] = next;
  link[1] = NULL;
  return link;
}

__attribute__((noinline)) void make_all(void) {
  void* head = NULL;
  int kept = 0, dropped = 0, chained = 0;
  while (kept < kKept || dropped < kDropped || chained < kChain) {
    if (kept < kKept) g_kept[kept++] = kept_block();
    for (int i = 0; i < 3 && dropped < kDropped; ++i) {
      void* p = dropped_block();
      ((char*)p)[0] = 1;
      hl_sink(p);
      ++dropped;
    }
    if (chained < kChain) head = chain_link(head), ++chained;
  }
  hl_sink(head);
}

int main(void) {
  make_all();
  printf("leak_both_parts: done\n");
  return 0;
}
