// One block is reachable at every instant while main exits: a worker thread keeps moving the only
// pointer to it into a freshly allocated holder (every old holder stays reachable from a global
// array; nothing is freed). A holder allocated after the exit scan took its snapshot would hide
// the block, so any leak in the report is a false one.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct holder {
  void* block;
  char pad[24];
};
enum { kKeep = 1 << 20 };
static struct holder* volatile g_head;
static struct holder* volatile g_old[kKeep];
static volatile long g_moves;

static void move_once(void) {
  struct holder* next = malloc(sizeof *next);
  struct holder* old = g_head;
  next->block = old->block;
  old->block = 0;
  g_old[g_moves++ % kKeep] = old;
  g_head = next;
}

static void scrub_stack(void) {  // no stale copy of the pointer on the worker's stack
  volatile char junk[4096];
  memset((char*)junk, 0, sizeof junk);
}

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    if (g_moves < kKeep - 1) move_once();
    scrub_stack();
  }
  return 0;
}

int main(void) {
  struct holder* h = malloc(sizeof *h);
  h->block = malloc(100);
  g_head = h;
  pthread_t t;
  pthread_create(&t, 0, worker, 0);
  usleep(20000);
  exit(0);
}
