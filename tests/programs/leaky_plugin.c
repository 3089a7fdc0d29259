// libleaky_plugin.so: loaded by leak_dlopen. plugin_leak() leaks 777 bytes; plugin_churn() frees
// what it allocates.
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline, visibility("default"))) void plugin_leak(void) {
  void* p = malloc(777);
  hl_sink(p);
}

__attribute__((noinline, visibility("default"))) int plugin_churn(void) {
  for (int i = 0; i < 100; ++i) {
    void* p = malloc((size_t)(i * 11 + 1));
    if (!p) return 0;
    hl_sink(p);
    free(p);
  }
  return 1;
}
