// A 32-byte node held the only pointer to a 100-byte block, in its second word, and was freed.
// Past the quarantine (40 MB of frees of another size), its memory comes back to one of 4096
// live 32-byte blocks whose owners write only their first 3 bytes. The 100-byte block is still
// lost: the pointer the node left behind must not count as a reference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* volatile g_live[4096];

__attribute__((noinline)) void* lose_behind_node(void) {
  void* lost = malloc(100);
  memset(lost, 1, 100);
  void** node = malloc(32);
  node[0] = NULL;
  node[1] = lost;
  free(node);
  return NULL;
}

// The frames below main that held the pointers are written over.
__attribute__((noinline)) static void scrub_stack(void) {
  volatile char junk[8192];
  memset((char*)junk, 0, sizeof junk);
}

int main(void) {
  lose_behind_node();
  scrub_stack();
  for (int i = 0; i < 200000; ++i) {
    void* volatile other = malloc(200);
    free(other);
  }
  for (int i = 0; i < 4096; ++i) {
    g_live[i] = malloc(32);
    strcpy(g_live[i], "hi");
  }
  puts("stale_in_reused_small: done");
  return 0;
}
