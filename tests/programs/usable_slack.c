// Uses the whole of malloc_usable_size, as a program may: a global 100-byte block holds a 24-byte
// block in every pointer slot of its usable size (kept_children: reachable), and a lost 100-byte
// block (lost_parent: definitely lost) does the same (lost_children: indirectly lost). The usable
// size used to be the size class (112): the scan read 100 bytes, and the last slots' blocks were
// "definitely lost". Tracked, the usable size is what was asked (100: 12 slots, 288 bytes), as
// under memcheck. With an argument, prints malloc_usable_size(malloc(0)) instead.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

void** g_kept;

void kept_children(void** parent) {
  for (size_t i = 0; i < malloc_usable_size(parent) / sizeof(void*); i++) parent[i] = malloc(24);
}
void lost_children(void** parent) {
  for (size_t i = 0; i < malloc_usable_size(parent) / sizeof(void*); i++) parent[i] = malloc(24);
}
void** lost_parent(void) { return malloc(100); }

int main(int argc, char** argv) {
  (void)argv;
  if (argc > 1) {  // `zero`: what a malloc(0) offers (tracked: 0, as memcheck says; glibc: 24)
    void* empty = malloc(0);
    printf("usable size of malloc(0): %zu\n", malloc_usable_size(empty));
    free(empty);
    return 0;
  }
  g_kept = malloc(100);
  kept_children(g_kept);
  void** lost = lost_parent();
  lost_children(lost);
  lost = NULL;
  puts("usable_slack: done");
  return 0;
}
