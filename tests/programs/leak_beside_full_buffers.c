// Allocates 64 buffers of 64 KiB (each fills its pages), keeps the even ones as [begin, end)
// pairs in globals and loses the odd ones: 32 definitely lost blocks of 65,536 bytes, 32 still
// reachable. The kernel places mappings back to back, so a kept buffer's end pointer could start
// a lost one's block (see pool.cc, mapping_for). Exit status 0.
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

enum { kBuffers = 64, kSize = 65536 };

char* g_begin[kBuffers / 2];
char* g_end[kBuffers / 2];

__attribute__((noinline)) char* new_buffer(void) {
  char* p = malloc(kSize);  // HL_LEAK_SITE new_buffer
  hl_sink(p);
  return p;
}

int main(void) {
  char* buffers[kBuffers];
  for (int i = 0; i < kBuffers; ++i) buffers[i] = new_buffer();
  for (int i = 0; i < kBuffers / 2; ++i) {
    g_begin[i] = buffers[2 * i];
    g_end[i] = buffers[2 * i] + kSize;
  }
  for (int i = 0; i < kBuffers; ++i) buffers[i] = NULL;
  hl_sink(buffers);
  puts("leak_beside_full_buffers: lost 32 of 64 buffers of 64 KiB");
  return 0;
}
