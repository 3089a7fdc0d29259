// Two lost structures whose inner blocks come from the same call sites (an entry from
// entry_make, holding a 19-byte name from name_copy): one headed by a 48-byte block from
// registry_make, the other by a 40-byte block from cache_make. Without suppressions: 88 bytes in
// 2 blocks definitely lost, entry_make 48 bytes in 2 blocks and name_copy 38 bytes in 2 blocks
// indirectly lost. With `leak:registry_make`, the registry's entry and name go with it (91 bytes
// in 3 blocks suppressed, as LeakSanitizer counts them): cache_make 40 bytes definite,
// entry_make 24 bytes and name_copy 19 bytes indirect remain.
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

struct entry {
  char* name;
  void* pad[2];
};

struct head {
  struct entry* entry;
  char pad[32];
};

__attribute__((noinline)) char* name_copy(const char* s) {
  char* p = malloc(19);
  memcpy(p, s, 19);
  return p;
}

__attribute__((noinline)) struct entry* entry_make(void) {
  struct entry* e = calloc(1, sizeof *e);  // 24 bytes
  e->name = name_copy("a name of 18 bytes");
  return e;
}

__attribute__((noinline)) void* registry_make(void) { return calloc(1, 48); }
__attribute__((noinline)) void* cache_make(void) { return calloc(1, 40); }

static volatile int g_heads = 2;  // the loop is not unrolled: one call site for both

int main(void) {
  void* heads[2] = {registry_make(), cache_make()};
  for (int i = 0; i < g_heads; ++i) {  // the inner blocks' stacks are the same for both
    struct entry* e = entry_make();
    memcpy(heads[i], &e, sizeof e);
    e = NULL;
  }
  hl_sink(heads[0]);
  hl_sink(heads[1]);
  heads[0] = heads[1] = NULL;
  return 0;
}
