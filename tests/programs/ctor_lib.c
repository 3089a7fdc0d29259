// A library (libctor_lib.so, linked by ctor_leak) whose constructor runs before heapledger's: the
// loader initializes a program's libraries before a preloaded one. It drops a 3,333-byte block
// from ctor_lost_site (definitely lost) and keeps a 20-byte strdup'd string (still reachable).
// Before heapledger took the callers of such blocks, both showed "(no stack recorded)".
// It also registers an at_quick_exit handler there, before heapledger's hook: the handler drops a
// 92-byte block from quick_exit_lost_site, which the report of a quick_exit must count (it was
// written before the handler ran). And it frees a block there: the timeline's first event, before
// heapledger's clock had an origin (it was stamped with the machine's uptime).
#include <stdlib.h>
#include <string.h>

static void* volatile g_sink;
static const char* volatile g_kept;

__attribute__((noinline)) void* ctor_lost_site(void) { return malloc(3333); }
__attribute__((noinline)) void* quick_exit_lost_site(void) { return malloc(92); }

static void drop_a_block(void) {
  g_sink = quick_exit_lost_site();
  g_sink = NULL;
}

__attribute__((constructor)) static void ctor_lib_start(void) {
  g_sink = ctor_lost_site();
  g_sink = NULL;
  g_kept = strdup("kept by ctor_lib.so");
  g_sink = malloc(4096);
  free(g_sink);
  g_sink = NULL;
  at_quick_exit(drop_a_block);
}

const char* ctor_lib_kept(void) { return g_kept; }
