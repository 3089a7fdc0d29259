// A library with a malloc_usable_size of its own, as jemalloc's has: linked into a program, it
// follows libheapledger.so in the lookup order. This one answers 1 for every block.
#include <stddef.h>

size_t malloc_usable_size(void* p) { return p ? 1 : 0; }
