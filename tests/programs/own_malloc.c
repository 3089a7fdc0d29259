// An executable with an allocator of its own (as rustc carries jemalloc, or a program linking
// mimalloc or tcmalloc statically): it defines malloc and the rest, which the dynamic linker
// binds ahead of a preloaded libheapledger.so for every module, libc included. Bump allocation
// from one mapping; free checks that the block is one of its own and aborts if not.
// Plain: prints "own malloc: N calls" and exits 0.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { kArena = 64 << 20 };
static const uint64_t kMine = 0x6f776e6d616c6c63ULL;
struct Header {
  uint64_t mine;
  size_t size;
};
static char *g_arena, *g_top;
static size_t g_calls;

static void* take(size_t size, size_t align) {
  if (!g_arena) {
    void* m = mmap(NULL, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    g_arena = g_top = m;
  }
  if (align < 16) align = 16;
  uintptr_t at = ((uintptr_t)g_top + sizeof(struct Header) + align - 1) & ~(uintptr_t)(align - 1);
  if (size > kArena || at + size > (uintptr_t)g_arena + kArena) {
    errno = ENOMEM;
    return NULL;
  }
  struct Header* h = (struct Header*)at - 1;
  h->mine = kMine;
  h->size = size;
  g_top = (char*)(at + size);
  ++g_calls;
  return (void*)at;
}

static struct Header* header_of(void* p) {
  struct Header* h = (struct Header*)p - 1;
  if (h->mine != kMine) {
    static const char kMessage[] = "own_malloc: not one of its blocks\n";
    (void)!write(2, kMessage, sizeof kMessage - 1);
    abort();
  }
  return h;
}

void* malloc(size_t size) { return take(size, 16); }
void free(void* p) {
  if (p) header_of(p);
}
void* calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  return take(n * size, 16);  // fresh mapping: zeros
}
void* realloc(void* p, size_t size) {
  void* q = take(size, 16);
  if (p && q) {
    size_t old = header_of(p)->size;
    memcpy(q, p, old < size ? old : size);
  }
  return q;
}
int posix_memalign(void** out, size_t align, size_t size) {
  void* p = take(size, align);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t size) { return take(size, align); }
void* memalign(size_t align, size_t size) { return take(size, align); }
size_t malloc_usable_size(void* p) { return p ? header_of(p)->size : 0; }

int main(void) {
  char* s = strdup("own");
  free(s);
  printf("own malloc: %s\n", g_calls > 0 ? "used" : "unused");
  return 0;
}
