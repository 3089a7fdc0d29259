// Allocates 300,000 blocks of 24 bytes (their records fill several steps of the tracker's table),
// frees all but 1,000, which it loses (1,000 definitely lost blocks of 24 bytes at keep_some),
// then prints how many bytes of writable anonymous memory /proc/self/maps lists: what a program
// that writes into every such mapping (redis' memory test after a crash) would fault in.
// Exit status 0.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

enum { kBlocks = 300000, kLost = 1000 };

__attribute__((noinline)) void* keep_some(void) {
  void* p = malloc(24);  // HL_LEAK_SITE keep_some
  hl_sink(p);
  return p;
}

int main(void) {
  void** blocks = malloc(sizeof(void*) * kBlocks);
  for (int i = 0; i < kBlocks; ++i)
    blocks[i] = i % (kBlocks / kLost) == 0 ? keep_some() : malloc(24);
  for (int i = 0; i < kBlocks; ++i)
    if (i % (kBlocks / kLost) != 0) free(blocks[i]);
  memset(blocks, 0, sizeof(void*) * kBlocks);
  free(blocks);
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) return 1;
  char line[512];
  unsigned long long total = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long long lo, hi, inode;
    char perms[8], dev[16];
    int name_at = 0;
    if (sscanf(line, "%llx-%llx %7s %*s %15s %llu %n", &lo, &hi, perms, dev, &inode, &name_at) < 5)
      continue;
    if (perms[0] == 'r' && perms[1] == 'w' && inode == 0 && line[name_at] != '[') total += hi - lo;
  }
  fclose(maps);
  printf("writable anonymous mappings: %llu MiB\n", total >> 20);
  return 0;
}
