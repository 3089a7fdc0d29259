// The .eh_frame reader (tracker/eh_frame.cc): rules for functions laid out by hand with known call
// frame information, and the same answers as libdw (which read these rules before) for every
// function of the libraries this test has loaded, the C library, the C++ library and the vdso
// among them.
#include "tracker/eh_frame.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

// Functions whose call frame information is written out by hand; each label is a pc to ask about.
extern "C" char ehf_push_entry[], ehf_push_after[];
extern "C" char ehf_rbp_body[], ehf_rbp_after_leave[];
extern "C" char ehf_remember_popped[], ehf_remember_restored[];
extern "C" char ehf_expression_before[], ehf_expression_after[];
extern "C" char ehf_outermost_body[], ehf_signal_body[];
extern "C" char ehf_register_before[], ehf_register_after[];
extern "C" char ehf_rbp_above_body[], ehf_deep_body[], ehf_rbp_deep_body[], ehf_no_cfi_body[];
asm(R"(
  .text
  .p2align 4
  .type ehf_push, @function
ehf_push:
  .cfi_startproc
  .globl ehf_push_entry
  .hidden ehf_push_entry
ehf_push_entry:
  push %rbx
  .cfi_adjust_cfa_offset 8
  .cfi_offset rbx, -16
  .globl ehf_push_after
  .hidden ehf_push_after
ehf_push_after:
  nop
  pop %rbx
  .cfi_adjust_cfa_offset -8
  ret
  .cfi_endproc
  .size ehf_push, .-ehf_push

  .type ehf_rbp, @function
ehf_rbp:
  .cfi_startproc
  push %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset rbp, -16
  mov %rsp, %rbp
  .cfi_def_cfa_register rbp
  .globl ehf_rbp_body
  .hidden ehf_rbp_body
ehf_rbp_body:
  nop
  leave
  .cfi_def_cfa rsp, 8
  .globl ehf_rbp_after_leave
  .hidden ehf_rbp_after_leave
ehf_rbp_after_leave:
  ret
  .cfi_endproc
  .size ehf_rbp, .-ehf_rbp

  .type ehf_remember, @function
ehf_remember:
  .cfi_startproc
  push %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset rbp, -16
  .cfi_remember_state
  pop %rbp
  .cfi_def_cfa_offset 8
  .cfi_restore rbp
  .globl ehf_remember_popped
  .hidden ehf_remember_popped
ehf_remember_popped:
  ret
  .cfi_restore_state
  .globl ehf_remember_restored
  .hidden ehf_remember_restored
ehf_remember_restored:
  nop
  ret
  .cfi_endproc
  .size ehf_remember, .-ehf_remember

  .type ehf_expression, @function
ehf_expression:
  .cfi_startproc
  .globl ehf_expression_before
  .hidden ehf_expression_before
ehf_expression_before:
  nop
  # DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg7 8, DW_OP_deref
  .cfi_escape 0x0f, 0x03, 0x77, 0x08, 0x06
  .globl ehf_expression_after
  .hidden ehf_expression_after
ehf_expression_after:
  nop
  ret
  .cfi_endproc
  .size ehf_expression, .-ehf_expression

  .type ehf_outermost, @function
ehf_outermost:
  .cfi_startproc
  .cfi_undefined rip
  .globl ehf_outermost_body
  .hidden ehf_outermost_body
ehf_outermost_body:
  nop
  ret
  .cfi_endproc
  .size ehf_outermost, .-ehf_outermost

  .type ehf_signal, @function
ehf_signal:
  .cfi_startproc
  .cfi_signal_frame
  .globl ehf_signal_body
  .hidden ehf_signal_body
ehf_signal_body:
  nop
  ret
  .cfi_endproc
  .size ehf_signal, .-ehf_signal

  .type ehf_register, @function
ehf_register:
  .cfi_startproc
  .globl ehf_register_before
  .hidden ehf_register_before
ehf_register_before:
  nop
  .cfi_register rip, rax
  .globl ehf_register_after
  .hidden ehf_register_after
ehf_register_after:
  nop
  ret
  .cfi_endproc
  .size ehf_register, .-ehf_register

  .type ehf_rbp_above, @function
ehf_rbp_above:
  .cfi_startproc
  nop
  .cfi_offset rbp, 8
  .globl ehf_rbp_above_body
  .hidden ehf_rbp_above_body
ehf_rbp_above_body:
  nop
  ret
  .cfi_endproc
  .size ehf_rbp_above, .-ehf_rbp_above

  .type ehf_rbp_deep, @function
ehf_rbp_deep:
  .cfi_startproc
  sub $40000, %rsp
  .cfi_adjust_cfa_offset 40000
  .globl ehf_deep_body
  .hidden ehf_deep_body
ehf_deep_body:
  nop
  .cfi_offset rbp, -40000
  .globl ehf_rbp_deep_body
  .hidden ehf_rbp_deep_body
ehf_rbp_deep_body:
  add $40000, %rsp
  .cfi_adjust_cfa_offset -40000
  ret
  .cfi_endproc
  .size ehf_rbp_deep, .-ehf_rbp_deep

  # No call frame information at all.
  .p2align 6
  .type ehf_no_cfi, @function
ehf_no_cfi:
  nop
  .globl ehf_no_cfi_body
  .hidden ehf_no_cfi_body
ehf_no_cfi_body:
  nop
  ret
  .size ehf_no_cfi, .-ehf_no_cfi
  .p2align 6
)");

namespace heapledger::detail {
namespace {

struct LoadedModule {
  std::string name;
  std::uintptr_t bias = 0;
  eh_frame::Tables tables;
  const ElfW(Phdr) * phdr = nullptr;
  int phnum = 0;
};

std::vector<LoadedModule> loaded_modules() {
  std::vector<LoadedModule> out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* arg) {
        auto* v = static_cast<std::vector<LoadedModule>*>(arg);
        v->push_back(
            LoadedModule{info->dlpi_name, info->dlpi_addr,
                         eh_frame::find(info->dlpi_phdr, info->dlpi_phnum, info->dlpi_addr),
                         info->dlpi_phdr, info->dlpi_phnum});
        return 0;
      },
      &out);
  return out;
}

// The module holding address p.
LoadedModule module_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (const LoadedModule& m : loaded_modules())
    for (int i = 0; i < m.phnum; ++i) {
      const ElfW(Phdr)& ph = m.phdr[i];
      if (ph.p_type == PT_LOAD && a >= m.bias + ph.p_vaddr && a < m.bias + ph.p_vaddr + ph.p_memsz)
        return m;
    }
  ADD_FAILURE() << "no module holds " << p;
  return {};
}

FrameRule rule_at(const void* pc) {
  return eh_frame::rule_at(module_of(pc).tables, reinterpret_cast<std::uintptr_t>(pc));
}

FrameRule simple(std::int32_t cfa_offset, bool from_rbp = false, bool rbp_saved = false,
                 std::int16_t rbp_offset = 0) {
  FrameRule r;
  r.kind = FrameRule::kSimple;
  r.cfa_offset = cfa_offset;
  r.cfa_from_rbp = from_rbp;
  r.rbp_saved = rbp_saved;
  r.rbp_offset = rbp_offset;
  return r;
}

FrameRule of_kind(FrameRule::Kind kind) {
  FrameRule r;
  r.kind = kind;
  return r;
}

std::string describe(const FrameRule& r) {
  static const char* const kinds[] = {"unknown", "simple", "outermost", "complex", "signal"};
  std::string s = kinds[r.kind];
  if (r.kind == FrameRule::kSimple) {
    s += std::string(" CFA=") + (r.cfa_from_rbp ? "rbp" : "rsp") + "+" +
         std::to_string(r.cfa_offset);
    if (r.rbp_saved) s += " rbp@CFA" + std::to_string(r.rbp_offset);
  }
  return s;
}

#define EXPECT_RULE(expected, actual) EXPECT_EQ(describe(expected), describe(actual))

TEST(EhFrame, HandWrittenCallFrameInformation) {
  EXPECT_RULE(simple(8), rule_at(ehf_push_entry));
  EXPECT_RULE(simple(16), rule_at(ehf_push_after));
  EXPECT_RULE(simple(16, true, true, -16), rule_at(ehf_rbp_body));
  EXPECT_RULE(simple(8, false, true, -16), rule_at(ehf_rbp_after_leave));
  // DW_CFA_restore brings the CIE's rule back; DW_CFA_restore_state the remembered row, CFA too.
  EXPECT_RULE(simple(8), rule_at(ehf_remember_popped));
  EXPECT_RULE(simple(16, false, true, -16), rule_at(ehf_remember_restored));
  EXPECT_RULE(simple(8), rule_at(ehf_expression_before));
  EXPECT_RULE(of_kind(FrameRule::kComplex), rule_at(ehf_expression_after));
  EXPECT_RULE(of_kind(FrameRule::kOutermost), rule_at(ehf_outermost_body));
  EXPECT_RULE(of_kind(FrameRule::kSignal), rule_at(ehf_signal_body));
  EXPECT_RULE(simple(8), rule_at(ehf_register_before));
  EXPECT_RULE(of_kind(FrameRule::kComplex), rule_at(ehf_register_after));
  EXPECT_RULE(of_kind(FrameRule::kComplex), rule_at(ehf_rbp_above_body));
  EXPECT_RULE(simple(40008), rule_at(ehf_deep_body));
  // rbp saved further below the CFA than a rule holds (16 bits).
  EXPECT_RULE(of_kind(FrameRule::kComplex), rule_at(ehf_rbp_deep_body));
  EXPECT_RULE(of_kind(FrameRule::kComplex), rule_at(ehf_no_cfi_body));
}

TEST(EhFrame, NoTablesNoRule) {
  EXPECT_RULE(
      of_kind(FrameRule::kComplex),
      eh_frame::rule_at(eh_frame::Tables{}, reinterpret_cast<std::uintptr_t>(ehf_push_after)));
  // Tables whose readable bounds leave out .eh_frame: nothing outside them is read.
  eh_frame::Tables cut = module_of(ehf_push_after).tables;
  ASSERT_NE(cut.hdr, 0u);
  cut.hi = cut.frame_hi = cut.hdr + 8;
  EXPECT_RULE(of_kind(FrameRule::kComplex),
              eh_frame::rule_at(cut, reinterpret_cast<std::uintptr_t>(ehf_push_after)));
}

// Program headers whose loaded segments overlap without being one (crafted): a read that starts
// in both went on in the larger, and a header whose own segment ends inside it had its table read
// 1 GiB past that segment (a review's). The header and its table are read in the header's
// segment only, and no .eh_frame segment is taken that overlaps it otherwise.
TEST(EhFrame, OverlappingSegmentsAreNotReadPastTheHeadersOwn) {
  alignas(8) static std::uint8_t image[4096] = {};
  const std::uint8_t header[] = {1,
                                 DW_EH_PE_pcrel | DW_EH_PE_sdata4,
                                 DW_EH_PE_udata4,
                                 DW_EH_PE_datarel | DW_EH_PE_sdata4,
                                 96,
                                 0,
                                 0,
                                 0,  // .eh_frame at +100, past the header's segment
                                 0,
                                 0,
                                 0,
                                 0x10};  // 0x10000000 entries
  std::memcpy(image, header, sizeof header);
  const auto base = reinterpret_cast<std::uintptr_t>(image);
  ElfW(Phdr) phdr[3] = {};
  phdr[0].p_type = PT_LOAD, phdr[0].p_flags = PF_R, phdr[0].p_memsz = 8;  // ends in the header
  phdr[1].p_type = PT_LOAD, phdr[1].p_flags = PF_R, phdr[1].p_memsz = sizeof image;
  phdr[2].p_type = PT_GNU_EH_FRAME, phdr[2].p_memsz = sizeof header;
  const eh_frame::Tables t = eh_frame::find(phdr, 3, base);
  EXPECT_EQ(t.hdr, base);
  EXPECT_EQ(t.hi, base + 8);
  EXPECT_EQ(t.frame_lo, t.lo) << "an overlapping segment taken for .eh_frame's";
  EXPECT_EQ(t.frame_hi, t.hi);
  EXPECT_RULE(of_kind(FrameRule::kComplex), eh_frame::rule_at(t, base + 200));
  // The same with the larger segment given for .eh_frame's all the same.
  eh_frame::Tables wide = t;
  wide.frame_lo = base, wide.frame_hi = base + sizeof image;
  EXPECT_RULE(of_kind(FrameRule::kComplex), eh_frame::rule_at(wide, base + 200));
}

// .eh_frame in a segment of its own (LLVM's libunwind, CUDA's tools put it in the writable one):
// the header is read in its segment, the entries in theirs. Made here by cutting this module's
// one segment in two at .eh_frame's start: the rules are the same, and none without the second.
TEST(EhFrame, EhFrameInASegmentOfItsOwn) {
  const eh_frame::Tables whole = module_of(ehf_push_after).tables;
  ASSERT_NE(whole.hdr, 0u);
  ASSERT_EQ(whole.frame_lo, whole.lo);  // one segment here
  std::int32_t to_frame;
  std::memcpy(&to_frame, reinterpret_cast<const void*>(whole.hdr + 4), 4);  // pcrel|sdata4
  const std::uintptr_t frame = whole.hdr + 4 + static_cast<std::intptr_t>(to_frame);
  std::uint32_t count;
  std::memcpy(&count, reinterpret_cast<const void*>(whole.hdr + 8), 4);
  eh_frame::Tables split = whole;
  split.lo = whole.hdr;
  split.hi = whole.hdr + 12 + std::uintptr_t{count} * 8;
  split.frame_lo = frame;
  split.frame_hi = whole.hi;
  ASSERT_TRUE(frame >= split.hi || frame + 64 <= split.lo) << "the table and .eh_frame overlap";
  for (const char* pc : {ehf_push_entry, ehf_rbp_body, ehf_remember_restored, ehf_signal_body})
    EXPECT_RULE(rule_at(pc), eh_frame::rule_at(split, reinterpret_cast<std::uintptr_t>(pc)));
  eh_frame::Tables header_only = split;
  header_only.frame_lo = header_only.frame_hi = 0;
  EXPECT_RULE(of_kind(FrameRule::kComplex),
              eh_frame::rule_at(header_only, reinterpret_cast<std::uintptr_t>(ehf_rbp_body)));
}

// ---------------------------------------------------------------------------------------------
// libdw's answers, read as the runtime module read them before this reader.

constexpr int kRegRbp = 6, kRegRsp = 7;

bool saved_at_cfa(const Dwarf_Op* ops, std::size_t n, std::int64_t* offset) {
  if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) return *offset = 0, true;
  if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst)
    return *offset = static_cast<std::int64_t>(ops[1].number), true;
  return false;
}

FrameRule libdw_rule(Dwarf_CFI* cfi, Dwarf_Addr pc) {
  FrameRule complex = of_kind(FrameRule::kComplex);
  Dwarf_Frame* frame = nullptr;
  if (dwarf_cfi_addrframe(cfi, pc, &frame) != 0) return complex;
  struct Free {
    Dwarf_Frame* f;
    ~Free() { std::free(f); }
  } free_frame{frame};
  bool signal = false;
  if (dwarf_frame_info(frame, nullptr, nullptr, &signal) != 16) return complex;
  if (signal) return of_kind(FrameRule::kSignal);
  Dwarf_Op mem[3];
  Dwarf_Op* ops = nullptr;
  std::size_t n = 0;
  if (dwarf_frame_register(frame, 16, mem, &ops, &n) != 0) return complex;
  if (n == 0 && ops == mem) return of_kind(FrameRule::kOutermost);
  std::int64_t ra_offset = 0;
  if (!saved_at_cfa(ops, n, &ra_offset) || ra_offset != -8) return complex;
  FrameRule rule = simple(0);
  if (dwarf_frame_register(frame, kRegRbp, mem, &ops, &n) != 0) return complex;
  if (n != 0 || ops != nullptr) {
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

// Every function's start address in the module, from its .eh_frame_hdr table.
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> function_starts(const eh_frame::Tables& t) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;  // (start, next start)
  const auto* hdr = reinterpret_cast<const std::uint8_t*>(t.hdr);
  if (hdr[0] != 1 || hdr[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4) ||
      hdr[1] != (DW_EH_PE_pcrel | DW_EH_PE_sdata4) || hdr[2] != DW_EH_PE_udata4) {
    ADD_FAILURE() << "unexpected .eh_frame_hdr encodings";
    return out;
  }
  std::uint32_t count;
  std::memcpy(&count, hdr + 8, 4);
  const auto* table = reinterpret_cast<const std::int32_t*>(hdr + 12);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uintptr_t start = t.hdr + table[2 * i];
    const std::uintptr_t next = i + 1 < count ? t.hdr + table[2 * (i + 1)] : start + 4096;
    out.emplace_back(start, next);
  }
  return out;
}

// The module's file (or, for the vdso, its image in memory) as libdw reads it.
struct LibdwModule {
  int fd = -1;
  Elf* elf = nullptr;
  Dwarf_CFI* cfi = nullptr;
  explicit LibdwModule(const LoadedModule& m) {
    elf_version(EV_CURRENT);
    if (m.name.find("vdso") != std::string::npos) {
      const auto* ehdr = reinterpret_cast<const ElfW(Ehdr)*>(getauxval(AT_SYSINFO_EHDR));
      std::size_t size = ehdr->e_shoff + std::size_t{ehdr->e_shnum} * ehdr->e_shentsize;
      elf = elf_memory(reinterpret_cast<char*>(const_cast<ElfW(Ehdr)*>(ehdr)), size);
    } else {
      std::string path = m.name.empty() ? "/proc/self/exe" : m.name;
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    }
    if (elf) cfi = dwarf_getcfi_elf(elf);
  }
  ~LibdwModule() {
    if (cfi) dwarf_cfi_end(cfi);
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
};

// A module with .eh_frame in another segment than .eh_frame_hdr (its writable one), as LLVM's
// linker lays out LLVM's libunwind (scripts/setup.sh installs it).
constexpr const char* kSplitModule = "/usr/lib/llvm-14/lib/libunwind.so.1";

TEST(EhFrame, SameRulesAsLibdwForEveryLoadedFunction) {
  void* split_module = dlopen(kSplitModule, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(split_module, nullptr) << dlerror();
  std::mt19937_64 random(42);
  std::size_t modules = 0, functions = 0, checked = 0, simple_rules = 0, mismatches = 0;
  bool vdso = false, c_library = false, cxx_library = false, split = false;
  for (const LoadedModule& m : loaded_modules()) {
    if (!m.tables.hdr) continue;
    LibdwModule reference(m);
    ASSERT_NE(reference.cfi, nullptr) << m.name;
    ++modules;
    vdso |= m.name.find("vdso") != std::string::npos;
    c_library |= m.name.find("libc.so") != std::string::npos;
    cxx_library |= m.name.find("libstdc++") != std::string::npos;
    split |= m.tables.frame_lo != m.tables.lo;
    auto check = [&](std::uintptr_t pc) {
      const FrameRule ours = eh_frame::rule_at(m.tables, pc);
      const FrameRule theirs = libdw_rule(reference.cfi, pc - m.bias);
      ++checked;
      simple_rules += ours.kind == FrameRule::kSimple;
      if (describe(ours) != describe(theirs) && ++mismatches <= 20)
        ADD_FAILURE() << m.name << " +0x" << std::hex << pc - m.bias << ": ours " << describe(ours)
                      << ", libdw " << describe(theirs);
    };
    for (auto [start, next] : function_starts(m.tables)) {
      ++functions;
      // Every address of the first 96 bytes (the prologue's rows) and of the last 32 (the
      // epilogues'), 16 more at random, and the addresses just before and at the next one.
      const std::uintptr_t size = next > start ? next - start : 1;
      for (std::uintptr_t i = 0; i < std::min<std::uintptr_t>(size, 96); ++i) check(start + i);
      for (std::uintptr_t i = size > 128 ? size - 32 : size; i < size; ++i) check(start + i);
      for (int i = 0; i < 16 && size > 128; ++i) check(start + random() % size);
      check(start - 1);
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_TRUE(vdso && c_library && cxx_library && split)
      << vdso << c_library << cxx_library << split;
  dlclose(split_module);
  // What was compared, so that a run that compared little shows it.
  std::printf("%zu modules, %zu functions, %zu addresses (%zu simple rules)\n", modules, functions,
              checked, simple_rules);
  EXPECT_GT(functions, 5000u);
  EXPECT_GT(simple_rules, checked / 2);
}

}  // namespace
}  // namespace heapledger::detail
