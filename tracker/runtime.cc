// libheapledger_runtime.so: what the tracker needs from third-party libraries while the program
// runs. Loaded with RTLD_LOCAL by libheapledger.so at start, so that libunwind's _Unwind_* and
// libdw never interpose on the program's own symbols.
//   - backtraces: libunwind's unw_backtrace (the fallback of tracker/fast_unwind.cc);
//   - frame rules: libdw reads a module's .eh_frame and says how to step over one frame.
#define UNW_LOCAL_ONLY
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <libelf.h>
#include <libunwind.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>

#include "tracker/modules.h"
#include "tracker/runtime_api.h"

namespace {

using heapledger::detail::FrameRule;
using heapledger::detail::ModuleMap;

constexpr int kRegRbp = 6, kRegRsp = 7;  // DWARF numbers on x86-64

// One module file's call frame information, opened on first use and kept (a few pages of
// .eh_frame mapped; the file descriptor is closed right away, programs close fds they do not own).
struct ModuleCfi {
  bool tried = false;
  Elf* elf = nullptr;
  Dwarf_CFI* cfi = nullptr;
};
ModuleCfi g_modules[ModuleMap::kMaxModules];

Dwarf_CFI* cfi_of(const char* path, std::uint32_t module) {
  if (module >= ModuleMap::kMaxModules) return nullptr;
  ModuleCfi& m = g_modules[module];
  if (m.tried) return m.cfi;
  m.tried = true;
  if (!path || path[0] != '/') return nullptr;  // the vdso, anonymous code
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  elf_version(EV_CURRENT);
  m.elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (m.elf) {
    m.cfi = dwarf_getcfi_elf(m.elf);
    elf_cntl(m.elf, ELF_C_FDDONE);  // everything it reads later is in the mapping
  }
  close(fd);
  return m.cfi;
}

// A register rule "saved at CFA + n", as libdw spells it: DW_OP_call_frame_cfa [plus n].
bool saved_at_cfa(const Dwarf_Op* ops, std::size_t n, std::int64_t* offset) {
  if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) return *offset = 0, true;
  if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst)
    return *offset = static_cast<std::int64_t>(ops[1].number), true;
  return false;
}

FrameRule rule_of(Dwarf_Frame* frame) {
  FrameRule complex;
  complex.kind = FrameRule::kComplex;
  bool signal = false;
  if (dwarf_frame_info(frame, nullptr, nullptr, &signal) != 16) return complex;
  if (signal) {
    FrameRule trampoline;
    trampoline.kind = FrameRule::kSignal;
    return trampoline;
  }

  Dwarf_Op mem[3];
  Dwarf_Op* ops = nullptr;
  std::size_t n = 0;
  if (dwarf_frame_register(frame, 16, mem, &ops, &n) != 0) return complex;
  if (n == 0 && ops == mem) {  // return address undefined: nothing called this frame
    FrameRule outermost;
    outermost.kind = FrameRule::kOutermost;
    return outermost;
  }
  std::int64_t ra_offset = 0;
  if (!saved_at_cfa(ops, n, &ra_offset) || ra_offset != -8) return complex;

  FrameRule rule;
  rule.kind = FrameRule::kSimple;
  if (dwarf_frame_register(frame, kRegRbp, mem, &ops, &n) != 0) return complex;
  if (n != 0 || ops != nullptr) {  // not "same value"
    std::int64_t off = 0;
    if (!saved_at_cfa(ops, n, &off) || off < std::numeric_limits<std::int16_t>::min() || off > 0)
      return complex;
    rule.rbp_saved = true;
    rule.rbp_offset = static_cast<std::int16_t>(off);
  }
  if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n != 1 || ops[0].atom != DW_OP_bregx) return complex;
  if (ops[0].number != kRegRsp && ops[0].number != kRegRbp) return complex;
  auto off = static_cast<std::int64_t>(ops[0].number2);
  if (off < 8 || off > (1 << 30)) return complex;
  rule.cfa_from_rbp = ops[0].number == kRegRbp;
  rule.cfa_offset = static_cast<std::int32_t>(off);
  return rule;
}

FrameRule frame_rule(const char* path, std::uint32_t module, std::uintptr_t pc) {
  FrameRule complex;
  complex.kind = FrameRule::kComplex;
  Dwarf_CFI* cfi = cfi_of(path, module);
  Dwarf_Frame* frame = nullptr;
  if (!cfi || dwarf_cfi_addrframe(cfi, pc, &frame) != 0) return complex;
  FrameRule rule = rule_of(frame);
  std::free(frame);
  return rule;
}

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
  static const RuntimeApi api{kRuntimeAbiVersion, unw_backtrace, frame_rule, forget_unloaded,
                              saved_registers};
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  return &api;
}
