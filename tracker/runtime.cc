// libheapledger_runtime.so: what the tracker needs from third-party libraries while the program
// runs. Loaded with RTLD_LOCAL by libheapledger.so at start, so that libunwind's _Unwind_* never
// interposes on the program's own symbols:
//   - backtraces: libunwind's unw_backtrace (the fallback of tracker/fast_unwind.cc);
//   - the registers a frame saved, and the frames signals interrupted (the exit report's roots:
//     saved_registers, interrupted_frames).
// Frame rules for the fast unwinder are read without it (tracker/eh_frame.h).
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <cstring>

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

// libunwind steps through the signal trampoline with the registers the kernel saved in its
// frame: past it, every general register is the interrupted frame's, and unw_is_signal_frame()
// says so of that frame (libunwind 1.6: not of the trampoline's own; asked before the step, the
// frame taken was the interrupted one's caller, a test's).
int interrupted_frames(const void* context, heapledger::detail::InterruptedFrame* out, int max) {
  unw_context_t copy;  // unw_init_local keeps a pointer to it, and it is the caller's
  std::memcpy(&copy, context, sizeof copy);
  unw_cursor_t cursor;
  if (max <= 0 || unw_init_local(&cursor, &copy) != 0) return 0;
  int n = 0;
  for (int frame = 0; frame < 256; ++frame) {
    if (unw_step(&cursor) <= 0) break;
    if (unw_is_signal_frame(&cursor) <= 0) continue;
    heapledger::detail::InterruptedFrame f{};
    unw_word_t value;
    if (unw_get_reg(&cursor, UNW_REG_SP, &value) != 0) break;
    f.sp = value;
    if (unw_get_reg(&cursor, UNW_REG_IP, &value) == 0) f.ip = value;
    if (unw_get_reg(&cursor, UNW_X86_64_RAX, &value) == 0) f.rax = value;
    for (int reg = UNW_X86_64_RAX; reg <= UNW_X86_64_R15; ++reg)
      if (reg != UNW_X86_64_RSP && unw_get_reg(&cursor, reg, &value) == 0)
        f.regs[f.n_regs++] = value;
    out[n < max ? n++ : max - 1] = f;  // nested past max: the outermost is kept
  }
  return n;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const heapledger::detail::RuntimeApi*
heapledger_runtime_api() {
  using namespace heapledger::detail;
  // The tracker calls unw_backtrace itself, not a wrapper: every frame between the program and
  // the unwinder is one more step on every allocation and free.
  static const RuntimeApi api{kRuntimeAbiVersion, unw_backtrace, forget_unloaded, saved_registers,
                              interrupted_frames};
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  return &api;
}
