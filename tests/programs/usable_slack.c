// Uses the whole of malloc_usable_size, as a program may: a global 100-byte block holds a 24-byte
// block in every pointer slot of its usable size (kept_children: reachable), and a lost 100-byte
// block (lost_parent: definitely lost) does the same (lost_children: indirectly lost). The usable
// size used to be the size class (112): the scan read 100 bytes, and the last slots' blocks were
// "definitely lost". Tracked, the usable size is what was asked (100: 12 slots, 288 bytes), as
// under memcheck.
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

int main(void) {
  g_kept = malloc(100);
  kept_children(g_kept);
  void** lost = lost_parent();
  lost_children(lost);
  lost = NULL;
  puts("usable_slack: done");
  return 0;
}
