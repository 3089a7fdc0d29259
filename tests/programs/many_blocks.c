// Allocates MIB mebibytes in blocks of SIZE bytes, writing into each, then frees them all and
// prints "ok"; "failed after N MiB" (status 1) if an allocation fails first. With a data limit
// (ulimit -d) well above MIB, the allocator's own bookkeeping must not be what runs out.
//   many_blocks MIB SIZE
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const long mib = atol(argv[1]);
  const size_t size = (size_t)atol(argv[2]);
  if (mib <= 0 || size < sizeof(void*)) return 2;
  // The blocks are chained through their first word: no array to allocate.
  void* head = NULL;
  for (long i = 0, n = mib * 1048576 / (long)size; i < n; ++i) {
    void** p = malloc(size);
    if (!p) {
      printf("failed after %ld MiB\n", (long)((size_t)i * size / 1048576));
      return 1;
    }
    *p = head;
    head = p;
  }
  while (head) {
    void* next = *(void**)head;
    free(head);
    head = next;
  }
  puts("ok");
  return 0;
}
