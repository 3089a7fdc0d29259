// Functions named as Rust names them, each leaking one block: reports show the Rust paths, as
// valgrind does, not the symbols (the v0 scheme's "_R..." was left as it was, and the legacy
// scheme's escapes and hash through the C++ demangler: "_$LT$alloc..alloc..Global$u20$as...").
#include <stdlib.h>

#include "hl_sink.h"

// v0: mycrate::example
__attribute__((noinline)) void v0_site(void) __asm__("_RNvCs15kBYyAo9fc_7mycrate7example");
void v0_site(void) { hl_sink(malloc(11)); }

// legacy: mycrate::legacy, hash dropped
__attribute__((noinline)) void legacy_site(void) __asm__("_ZN7mycrate6legacy17h0123456789abcdefE");
void legacy_site(void) { hl_sink(malloc(22)); }

// legacy with escapes: <alloc::alloc::Global as core::alloc::Allocator>::allocate
__attribute__((noinline)) void escaped_site(void) __asm__(
    "_ZN63_$LT$alloc..alloc..Global$u20$as$u20$core..alloc..Allocator$GT$"
    "8allocate17h71d1a2b3c4d5e6f7E");
void escaped_site(void) { hl_sink(malloc(33)); }

int main(void) {
  v0_site();
  legacy_site();
  escaped_site();
  return 0;
}
