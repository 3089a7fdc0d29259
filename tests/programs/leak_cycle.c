// A ring of three 40-byte nodes that only point to each other, dropped: no lost block is free of
// pointers from other lost blocks; memcheck counts one of them definite and the rest indirect,
// 40 B definite + 80 B indirect, all allocated at cycle_node.
#include <stdlib.h>

struct Node {
  struct Node* next;
  char payload[32];
};

__attribute__((noinline)) struct Node* cycle_node(void) { return calloc(1, sizeof(struct Node)); }

// Held here while it is built, so the compiler cannot drop the links as stores nobody reads.
static struct Node* volatile g_ring;

__attribute__((noinline)) void make_and_drop_cycle(void) {
  struct Node* a = cycle_node();
  struct Node* b = cycle_node();
  struct Node* c = cycle_node();
  a->next = b, b->next = c, c->next = a;
  g_ring = a;
  g_ring = NULL;
}

// Overwrites the stack the cycle's pointers were on, so no stale copy keeps a node reachable.
__attribute__((noinline)) void scrub_stack(void) {
  volatile char junk[4096];
  for (int i = 0; i < (int)sizeof junk; ++i) junk[i] = 0;
}

int main(void) {
  make_and_drop_cycle();
  scrub_stack();
  return 0;
}
