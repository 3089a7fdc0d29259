// Frame rules read from a loaded module's own call frame information (.eh_frame, found through
// .eh_frame_hdr's sorted table), in the module's memory: what tracker/fast_unwind.cc needs to
// step over one frame. No file is opened, nothing is allocated, no system call is made, and only
// the loaded segments that hold .eh_frame_hdr and .eh_frame are read: it runs inside allocations
// (learning the rule for a return address seen for the first time), in every tracked process.
//
// It reads what compilers emit for x86-64 code: a CIE and an FDE with the DW_CFA_* operations
// that define the CFA as a register plus an offset and say where registers are saved. Anything
// else (a CFA given by an expression, a return address that is not at CFA - 8, encodings
// x86-64 toolchains do not use, a module without .eh_frame_hdr) is kComplex: libunwind's job,
// as it was when libdw read these rules (the answers are the same; tests/unit/eh_frame_test.cc
// compares them over whole system libraries).
#pragma once

#include <link.h>

#include <cstdint>

namespace heapledger::detail {

// How to find the caller's frame from a return address.
struct FrameRule {
  enum Kind : std::uint8_t {
    kUnknown = 0,  // not looked up yet
    kSimple,       // CFA = (rsp or rbp) + cfa_offset; return address at CFA - 8; rbp as below
    kOutermost,    // the return address is undefined: the first frame of a thread (_start, clone)
    kComplex,      // anything else (expressions, no CFI): libunwind's job
    kSignal,       // the signal trampoline (sigreturn): a signal handler's caller
  };
  std::int32_t cfa_offset = 0;
  std::int16_t rbp_offset = 0;
  Kind kind = kUnknown;
  bool cfa_from_rbp : 1 = false;  // CFA based on rbp instead of rsp
  bool rbp_saved : 1 = false;     // caller's rbp saved at CFA + rbp_offset (else unchanged)
};

namespace eh_frame {

// Where a module's tables are: .eh_frame_hdr's address (0: the module has none), the bounds of
// the loaded segment holding it, and of the one holding .eh_frame (most often the same; LLVM's
// libunwind and CUDA's tools have .eh_frame in the writable one). Nothing outside them is read.
struct Tables {
  std::uintptr_t hdr = 0;
  std::uintptr_t lo = 0, hi = 0;
  std::uintptr_t frame_lo = 0, frame_hi = 0;
};

// From the module's program headers, as dl_iterate_phdr gives them.
Tables find(const ElfW(Phdr) * phdr, int phnum, std::uintptr_t bias);

// The rule in force at pc, an address inside a call instruction (a return address minus one):
// how the caller's frame is found from the frame that made the call.
FrameRule rule_at(const Tables& tables, std::uintptr_t pc);

}  // namespace eh_frame
}  // namespace heapledger::detail
