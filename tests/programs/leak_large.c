// Large blocks (over 32 KiB: each a mapping of its own) lost in every way: 7 x 40,000 bytes from
// malloc, 200,000 from calloc, 100,000 from a realloc that grew a small block, 50,000 from
// posix_memalign, all definitely lost; and a lost 24-byte node (definite) whose only pointer to
// a 200,000-byte buffer makes that one indirectly lost. A 65,536-byte block stays reachable from
// a global, and one more is freed. Prints "done".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Node {
  char* buffer;
  size_t size;
  struct Node* next;
};

void* g_kept;

__attribute__((noinline)) void large_malloc_site(void) {
  for (int i = 0; i < 7; i++) {
    char* volatile p = malloc(40000);
    memset(p, 1, 64);
  }
}

__attribute__((noinline)) void large_calloc_site(void) {
  char* volatile p = calloc(1, 200000);
  p[0] = 1;
}

__attribute__((noinline)) void large_realloc_site(void) {
  char* p = malloc(10);
  char* volatile q = realloc(p, 100000);
  q[0] = 1;
}

__attribute__((noinline)) void large_memalign_site(void) {
  void* p = NULL;
  if (posix_memalign(&p, 4096, 50000) == 0) memset(p, 2, 64);
  void* volatile lost = p;
  (void)lost;
}

__attribute__((noinline)) void large_buffer_site(struct Node* n) { n->buffer = malloc(200000); }

__attribute__((noinline)) void node_with_large_buffer_site(void) {
  struct Node* volatile n = malloc(sizeof *n);
  n->size = 200000;
  n->next = NULL;
  large_buffer_site(n);
  memset(n->buffer, 3, 64);
}

int main(void) {
  large_malloc_site();
  large_calloc_site();
  large_realloc_site();
  large_memalign_site();
  node_with_large_buffer_site();
  g_kept = malloc(65536);
  free(malloc(70000));
  printf("done\n");
  return 0;
}
