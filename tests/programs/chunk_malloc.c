// A preload that is an allocator of its own built on the next malloc (ours, when heapledger is
// preloaded after it): it carves blocks out of 1 MiB chunks it mallocs, behind a 16-byte header,
// and its free only takes back what it handed out. The program's blocks never reach heapledger
// one by one. Never frees a chunk: enough for a test.
//   LD_PRELOAD="libchunk_malloc.so libheapledger.so" PROGRAM
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { kChunk = 1 << 20 };
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_at, *g_end;

static void* carve(size_t size) {
  static void* (*next_malloc)(size_t);
  if (!next_malloc) next_malloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
  size = (size + 15) & ~(size_t)15;
  if (size > kChunk - 16) return NULL;
  pthread_mutex_lock(&g_lock);
  if (!g_at || g_at + 16 + size > g_end) {
    g_at = next_malloc ? next_malloc(kChunk) : NULL;
    g_end = g_at ? g_at + kChunk : NULL;
  }
  char* p = NULL;
  if (g_at) {
    memcpy(g_at, &size, sizeof size);
    p = g_at + 16;
    g_at = p + size;
  }
  pthread_mutex_unlock(&g_lock);
  return p;
}

void* malloc(size_t size) { return carve(size); }
void free(void* p) { (void)p; }
void* calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void* p = carve(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}
void* realloc(void* p, size_t size) {
  void* q = carve(size);
  if (p && q) {
    size_t old;
    memcpy(&old, (char*)p - 16, sizeof old);
    memcpy(q, p, old < size ? old : size);
  }
  return q;
}
