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

// v0 back-references nested 26 deep: a 260-byte symbol for a name of gigabytes (the demangler
// ran 50 s and the report died out of memory, a review's); shown as the symbol it is
__attribute__((noinline)) void nested_site(void) __asm__(
    "_RINvC1a1fTllETB7_B7_ETBb_Bb_ETBj_Bj_ETBr_Br_ETBz_Bz_ETBH_BH_ETBP_BP_ETBX_BX_ETB15_B15_ETB1d_"
    "B1d_ETB1n_B1n_ETB1x_B1x_ETB1H_B1H_ETB1R_B1R_ETB21_B21_ETB2b_B2b_ETB2l_B2l_ETB2v_B2v_ETB2F_B2F_"
    "ETB2P_B2P_ETB2Z_B2Z_ETB39_B39_ETB3j_B3j_ETB3t_B3t_ETB3D_B3D_ETB3N_B3N_EE");
void nested_site(void) { hl_sink(malloc(44)); }

int main(void) {
  nested_site();
  v0_site();
  legacy_site();
  escaped_site();
  return 0;
}
