// Plugin A for dl_reuse: same size as plugin B, so both load at the same address in turn.
#include <stdlib.h>
__attribute__((noinline)) void* reuse_alloc_a(void) { return malloc(111); }
__attribute__((noinline)) void* reuse_spare_a(void) { return NULL; }
