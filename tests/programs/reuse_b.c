// Plugin B for dl_reuse: same size as plugin A, so both load at the same address in turn.
#include <stdlib.h>
__attribute__((noinline)) void* reuse_spare_b(void) { return NULL; }
__attribute__((noinline)) void* reuse_alloc_b(void) { return malloc(222); }
