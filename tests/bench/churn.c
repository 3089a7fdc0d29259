// Whole-process workload: churn of small random-size malloc/free (8..512 bytes) over a live
// window of slots. With 2 threads, half of the evicted blocks are handed to the other thread
// through a lock-free ring and freed there (producer/consumer cross-thread frees).
//   churn THREADS OPS [WINDOW]      OPS is the total over all threads
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { kRingSize = 4096, kMaxThreads = 2 };

// Single producer, single consumer: the peer thread pushes, the owner pops.
struct Ring {
  _Alignas(64) _Atomic uint64_t head;  // next to pop (owner)
  _Alignas(64) _Atomic uint64_t tail;  // next to push (peer)
  _Alignas(64) void* items[kRingSize];
};

struct Worker {
  int index;
  long ops;
  int window;
  struct Ring inbox;
  _Atomic int done;
  uint64_t checksum;
};

static struct Worker g_workers[kMaxThreads];
static int g_threads;

static inline uint64_t next_random(uint64_t* s) {  // xorshift64*
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static int ring_push(struct Ring* r, void* p) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == kRingSize) return 0;
  r->items[tail % kRingSize] = p;
  atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
  return 1;
}

static void ring_drain(struct Ring* r) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  for (; head != tail; ++head) free(r->items[head % kRingSize]);
  atomic_store_explicit(&r->head, head, memory_order_release);
}

static void* run_worker(void* arg) {
  struct Worker* w = arg;
  struct Ring* peer = g_threads > 1 ? &g_workers[(w->index + 1) % g_threads].inbox : NULL;
  void** slots = calloc((size_t)w->window, sizeof *slots);
  uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->index + 1);
  uint64_t sum = 0;
  for (long i = 0; i < w->ops; ++i) {
    uint64_t r = next_random(&rng);
    size_t slot = (size_t)(r % (uint64_t)w->window);
    size_t size = 8 + (size_t)((r >> 32) % 505);
    void* old = slots[slot];
    if (old) {
      sum += *(uint64_t*)old;
      if (!(peer && (r >> 20 & 1) && ring_push(peer, old))) free(old);
    }
    uint64_t* p = malloc(size);
    if (!p) abort();
    p[0] = r;
    slots[slot] = p;
    if (peer && (i & 63) == 0) ring_drain(&w->inbox);
  }
  for (int s = 0; s < w->window; ++s) free(slots[s]);
  free(slots);
  w->checksum = sum;
  atomic_store_explicit(&w->done, 1, memory_order_release);
  if (peer) {  // free what the peer still sends, until it is done too
    struct Worker* from = &g_workers[(w->index + g_threads - 1) % g_threads];
    while (!atomic_load_explicit(&from->done, memory_order_acquire)) ring_drain(&w->inbox);
    ring_drain(&w->inbox);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s THREADS OPS [WINDOW]\n", argv[0]);
    return 2;
  }
  g_threads = atoi(argv[1]);
  long ops = atol(argv[2]);
  int window = argc > 3 ? atoi(argv[3]) : 10000;
  if (g_threads < 1 || g_threads > kMaxThreads || ops <= 0 || window <= 0) return 2;
  pthread_t tids[kMaxThreads];
  for (int t = 0; t < g_threads; ++t) {
    g_workers[t].index = t;
    g_workers[t].ops = ops / g_threads;
    g_workers[t].window = window;
  }
  for (int t = 1; t < g_threads; ++t) pthread_create(&tids[t], NULL, run_worker, &g_workers[t]);
  run_worker(&g_workers[0]);
  uint64_t sum = g_workers[0].checksum;
  for (int t = 1; t < g_threads; ++t) {
    pthread_join(tids[t], NULL);
    sum += g_workers[t].checksum;
  }
  printf("churn threads=%d ops=%ld window=%d checksum=%llx\n", g_threads, ops, window,
         (unsigned long long)sum);
  return 0;
}
