// Every reachability class at exit, each from its own function:
//   lost_list_node:   a 5-node list whose head pointer is dropped -> 1 definite (48 B) + 4
//                     indirect (192 B) blocks;
//   held_by_global:   64 B kept in a global -> reachable;
//   held_by_interior: 80 B whose only reference points 16 bytes into it -> possible;
//   freed_later:      blocks freed before exit -> not in the report at all.
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

struct node {
  struct node* next;
  char payload[40];
};

void* g_global_block;
char* g_interior_pointer;

__attribute__((noinline)) struct node* lost_list_node(struct node* next) {
  struct node* n = malloc(sizeof *n);
  n->next = next;
  return n;
}

__attribute__((noinline)) void build_and_drop_list(void) {
  struct node* head = NULL;
  for (int i = 0; i < 5; ++i) head = lost_list_node(head);
  hl_sink(head);
}

__attribute__((noinline)) void held_by_global(void) { g_global_block = malloc(64); }

__attribute__((noinline)) void held_by_interior(void) { g_interior_pointer = (char*)malloc(80) + 16; }

__attribute__((noinline)) void freed_later(void) {
  for (int i = 0; i < 10; ++i) {
    void* p = malloc(200);
    hl_sink(p);
    free(p);
  }
}

int main(void) {
  build_and_drop_list();
  held_by_global();
  held_by_interior();
  freed_later();
  printf("reach_kinds: done\n");
  return 0;
}
