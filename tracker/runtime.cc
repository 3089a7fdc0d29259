// libheapledger_runtime.so: what the tracker needs from third-party libraries while the program
// runs. Loaded with RTLD_LOCAL by libheapledger.so at start, so that libunwind's _Unwind_* never
// interposes on the program's own symbols:
//   - backtraces: libunwind's unw_backtrace (the fallback of tracker/fast_unwind.cc);
//   - the registers a frame saved (the exit report's roots: saved_registers).
// Frame rules for the fast unwinder are read without it (tracker/eh_frame.h).
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "tracker/runtime_api.h"

namespace {

void forget_unloaded() { unw_flush_cache(unw_local_addr_space, 0, 0); }

int saved_registers(std::uintptr_t sp, std::uintptr_t* out) {
  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return 0;
  for (int frame = 0; frame < 128; ++frame) {
    unw_word_t at = 0;
    if (unw_get_reg(&cursor, UNW_REG_SP, &at) != 0 || at > sp) return 0;
    if (at == sp) {
      int n = 0;
      for (int reg : {UNW_X86_64_RBX, UNW_X86_64_RBP, UNW_X86_64_R12, UNW_X86_64_R13, UNW_X86_64_R14,
                      UNW_X86_64_R15}) {
        unw_word_t value;
        if (unw_get_reg(&cursor, reg, &value) == 0) out[n++] = value;
      }
      return n;
    }
    if (unw_step(&cursor) <= 0) return 0;
  }
  return 0;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const heapledger::detail::RuntimeApi*
heapledger_runtime_api() {
  using namespace heapledger::detail;
  // The tracker calls unw_backtrace itself, not a wrapper: every frame between the program and
  // the unwinder is one more step on every allocation and free.
  static const RuntimeApi api{kRuntimeAbiVersion, unw_backtrace, forget_unloaded, saved_registers};
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  return &api;
}
