// A page-aligned block with a guard page (PROT_NONE) in it, freed without unprotecting it: fine
// under glibc, where a block this large is its own mapping and free() unmaps it. Then an
// unrelated allocation, written all over.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
  char* stack = memalign(4096, 1 << 20);
  if (!stack || mprotect(stack, 4096, PROT_NONE) != 0) return 1;
  stack[8192] = 1;
  free(stack);
  char* buf = malloc(512 * 1024);
  if (!buf) return 1;
  memset(buf, 0, 512 * 1024);
  free(buf);
  puts("ok");
  return 0;
}
