// A diagnostic for the benchmark: plain glibc malloc whose frees are held back first-in,
// first-out, the way heapledger's double-free quarantine holds them (16 MiB and at most 65,536
// blocks by default; blocks over 32 KiB are released at once, since heapledger holds those
// without their memory). No tracking and no allocator of ours: what the program itself pays for
// getting back memory it freed long ago, cold in the caches and the TLB.
//   LD_PRELOAD=delay_free.so [DELAY_FREE_MB=16] PROGRAM ...
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

extern void __libc_free(void*);

enum { kMaxBlocks = 65536, kMaxHeld = 32 * 1024 };

static void* g_ring[kMaxBlocks];
static size_t g_size[kMaxBlocks];
static size_t g_head, g_count, g_bytes, g_budget = (size_t)-1;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t budget(void) {
  if (g_budget == (size_t)-1) {
    const char* mb = getenv("DELAY_FREE_MB");
    g_budget = (size_t)(mb ? atol(mb) : 16) << 20;
  }
  return g_budget;
}

void free(void* p) {
  if (!p) return;
  size_t size = malloc_usable_size(p);
  if (size > kMaxHeld || budget() == 0) {
    __libc_free(p);
    return;
  }
  pthread_mutex_lock(&g_lock);
  size_t tail = (g_head + g_count) % kMaxBlocks;
  g_ring[tail] = p;
  g_size[tail] = size;
  ++g_count;
  g_bytes += size;
  while (g_count == kMaxBlocks || g_bytes > g_budget) {  // the oldest leave
    __libc_free(g_ring[g_head]);
    g_bytes -= g_size[g_head];
    g_head = (g_head + 1) % kMaxBlocks;
    --g_count;
  }
  pthread_mutex_unlock(&g_lock);
}

void cfree(void* p) { free(p); }
