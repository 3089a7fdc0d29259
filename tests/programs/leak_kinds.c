// One block of each leak kind, for the reachability scan:
//   new_head      40 bytes, definite: the only pointer to the list head is dropped
//   new_node      3 x 40 bytes, indirect: reachable only through the lost head
//   keep_global   64 bytes, reachable: a global points at it
//   keep_interior 96 bytes, possible: a global points 16 bytes into it, not at its start
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

struct Node {
  struct Node* next;
  char payload[32];
};

void* volatile g_reachable;
char* volatile g_interior;

__attribute__((noinline)) struct Node* new_node(struct Node* next) {
  struct Node* n = calloc(1, sizeof *n);
  if (n) n->next = next;
  return n;
}

__attribute__((noinline)) struct Node* new_head(struct Node* next) {
  struct Node* n = calloc(1, sizeof *n);
  if (n) n->next = next;
  return n;
}

__attribute__((noinline)) void leak_list(void) {
  struct Node* tail = NULL;
  for (int i = 0; i < 3; ++i) tail = new_node(tail);
  hl_sink(new_head(tail));
}

__attribute__((noinline)) void keep_global(void) { g_reachable = malloc(64); }

__attribute__((noinline)) void keep_interior(void) {
  char* p = malloc(96);
  g_interior = p ? p + 16 : NULL;
}

int main(void) {
  _Static_assert(sizeof(struct Node) == 40, "40-byte nodes");
  leak_list();
  keep_global();
  keep_interior();
  printf("leak_kinds: one definite, three indirect, one reachable, one possible\n");
  return 0;
}
