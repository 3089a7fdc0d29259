// The call sites at the peak, exactly: the peak is one small block more than a big batch, and
// the sites change after it (half the batch freed, a later site allocates below the peak).
//   peak_exact
// At the peak: batch_site 100 blocks of 1,000 bytes, top_site one block of 500 bytes (the peak is
// 0.5% above the batch alone), late_site nothing (its blocks came after the peak). Everything is
// freed before main returns.
#include <stdlib.h>

#include "hl_sink.h"

enum { kBatch = 100, kLate = 10 };
static void* g_batch[kBatch];  // static: no block of the program's own holds the pointers
static void* g_late[kLate];

__attribute__((noinline)) static void* batch_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* top_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* late_site(size_t n) { return malloc(n); }

int main(void) {
  for (int i = 0; i < kBatch; ++i) hl_sink(g_batch[i] = batch_site(1000));
  void* top = top_site(500);
  hl_sink(top);
  free(top);
  for (int i = 0; i < kBatch / 2; ++i) free(g_batch[i]);
  for (int i = 0; i < kLate; ++i) hl_sink(g_late[i] = late_site(100));
  for (int i = 0; i < kLate; ++i) free(g_late[i]);
  for (int i = kBatch / 2; i < kBatch; ++i) free(g_batch[i]);
  return 0;
}
