// main exits while a second thread keeps growing the heap (a list of 1,008-byte nodes, a new
// peak at every allocation), so the exit report runs while the peak still moves: the peak it
// shows and the call sites it names at the peak must be read together. Not in the test suite
// (how far the thread gets is timing); the README quotes it. With
// HEAPLEDGER_OPTIONS=json=r.json:log=none and the library preloaded, the call sites at the peak
// sum to the peak shown:
//   python3 -c 'import json; r=json.load(open("r.json")); p=r["summary"]["peak_bytes"];
//               print(p, sum(s["bytes"] for s in r["peak"]) - p)'
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "hl_sink.h"

struct node {
  struct node* next;
  char pad[1000];
};

__attribute__((noinline)) static struct node* grow_site(void) {
  return malloc(sizeof(struct node));
}

static void* grow(void* arg) {
  (void)arg;
  struct node* head = NULL;
  for (;;) {
    struct node* n = grow_site();
    if (!n) return NULL;
    n->next = head;
    head = n;
    hl_sink_slot = head;  // reachable, through a global
  }
}

int main(void) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, grow, NULL) != 0) return 1;
  const struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  exit(0);
}
