// Leak classification at exit, memcheck/LeakSanitizer style, without ptrace: stop the other
// threads, take the roots (writable memory of every module and anonymous mapping, each thread's
// live stack and registers), flood-fill through live blocks, then split what was not reached
// into definite and indirect leaks. Blocks reached only through interior pointers are possible.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "tracker/alloc_kind.h"
#include "tracker/runtime_api.h"

namespace heapledger::detail {

class Ledger;
class StackTable;

// Which blocks count as roots although nothing in the scanned memory may point to them: the
// dynamic linker's own allocations (TLS vectors of threads, link maps), identified by the module
// of the allocating frame. Resolved before the scan: nothing in it may take a lock.
struct RootPolicy {
  std::uintptr_t self_lo = 0, self_hi = 0;  // libheapledger.so: never a root
  // Stacks of threads that have ended: not roots, unless a live thread now runs on one.
  struct Range {
    std::uintptr_t lo, hi;
  };
  const Range* dead_stacks = nullptr;
  std::size_t n_dead_stacks = 0;
  // When thread tid went through heapledger's exit destructor for it (ns of CLOCK_BOOTTIME; 0:
  // not), past the last of the program's code and of heapledger's (see EndedThreads, and
  // StopTheWorld::stop).
  std::uint64_t (*ended_at)(pid_t tid) = nullptr;
  // Each loaded module's extent (its lowest to highest PT_LOAD address: code, data and .bss): a
  // stack pointer in one is on a stack in static data, which counts whole (see scan_roots).
  const Range* modules = nullptr;
  std::size_t n_modules = 0;
  bool in_module(std::uintptr_t lo, std::uintptr_t hi) const;
  // f(from, to) for each part of [lo, hi) that lies in a module.
  template <class F>
  void for_each_module_part(std::uintptr_t lo, std::uintptr_t hi, F&& f) const {
    for (std::size_t i = 0; i < n_modules; ++i)
      if (lo < modules[i].hi && modules[i].lo < hi)
        f(lo > modules[i].lo ? lo : modules[i].lo, hi < modules[i].hi ? hi : modules[i].hi);
  }
  // Called once the other threads are stopped, as the live blocks are read (null: none): what is
  // counted there agrees with them (the exit report's allocation and free counts: read before the
  // stop, gdb's worker threads made them 2 to 306 blocks off the live ones, a user trial's).
  void (*while_stopped)(void* arg) = nullptr;
  void* while_stopped_arg = nullptr;
  const StackTable* stacks = nullptr;
  std::uint16_t root_modules[8] = {};
  std::size_t n_root_modules = 0;
  bool is_root(std::uint32_t stack) const;
};

enum class Reach : std::uint8_t {
  kUnreached = 0,
  kDefinite = 1,   // not reached, and no other unreached block points to it
  kIndirect = 2,   // not reached, but pointed to by another leaked block
  kPossible = 3,   // reached only through pointers into its middle
  kReachable = 4,
};

// holder: for an indirectly lost block, the allocation stack of the definitely lost block whose
// structure it belongs to (the first the scan found holding it), so that suppressing that leak
// suppresses what only it holds, as LeakSanitizer does; kNoHolder (runtime_api.h) otherwise.
// Packed beside the size (40 bits, as in Record): 32 bytes a block, 1,000,000 blocks at exit.
struct ScannedBlock {
  std::uintptr_t start;
  std::uint64_t size : 40;
  std::uint64_t holder : 24;
  std::uint64_t time_us : 40;  // as a Record keeps them
  std::uint64_t thread : 24;   // the Record's thread number
  std::uint32_t stack;
  AllocKind kind;
  Reach reach;
};
static_assert(sizeof(ScannedBlock) == 32);

struct ScanStats {
  std::size_t threads = 0;          // other threads seen
  std::size_t threads_stopped = 0;  // of those, stopped in time (the others were scanned whole)
  std::size_t threads_held = 0;     // of those stopped, held asleep: registers not read
  std::size_t root_bytes = 0;
  std::size_t heap_bytes_scanned = 0;
  double milliseconds = 0;
  // Why /proc/self/maps could not be opened (an errno), if it could not: no scan then.
  int maps_error = 0;
};

// The calling thread's own roots. Its live frames begin at the frame that called exit() (those
// below hold nothing of the program's but stale values); a handler that called exit() on an
// alternate signal stack has more of them on the thread's own stack, from where the signal
// interrupted it up (with the red zone below, unless it was blocked in a system call); dead
// frames below that were counted as roots, and a stale copy of a dropped pointer there kept a
// definite leak "still reachable" (a review's).
// A stack holding more than one counts from the lowest. The registers are what those frames hold:
// the exit() caller's, saved somewhere below it; each interrupted frame's, as the kernel saved
// them.
struct OwnRoots {
  static constexpr int kMaxStacks = 4;
  static constexpr int kMaxRegisters = 6 + (kMaxStacks - 1) * InterruptedFrame::kRegisters;
  std::uintptr_t from[kMaxStacks] = {};
  int n_from = 0;
  std::uintptr_t registers[kMaxRegisters] = {};
  int n_registers = 0;

  explicit OwnRoots(std::uintptr_t exit_caller_sp) : from{exit_caller_sp}, n_from(1) {}
  void add_registers(const std::uintptr_t* regs, int n);
  void add_interrupted(const InterruptedFrame& frame);
  // The lowest of `from` in [lo, hi); 0 if none is.
  std::uintptr_t lowest_in(std::uintptr_t lo, std::uintptr_t hi) const;
};

class LeakScan {
 public:
  LeakScan() = default;
  ~LeakScan();
  LeakScan(const LeakScan&) = delete;
  LeakScan& operator=(const LeakScan&) = delete;

  // Classifies every block in the ledger. Other threads are stopped only during the scan; the
  // ledger is locked for the same time. Returns false if memory for the scan was refused.
  // `own`: the calling thread's live frames and registers.
  bool run(Ledger& ledger, const RootPolicy& policy, const OwnRoots& own);

  std::size_t size() const { return count_; }
  const ScannedBlock& block(std::size_t i) const { return blocks_[i]; }
  ScannedBlock* mutable_blocks() { return blocks_; }  // the caller may reorder them
  const ScanStats& stats() const { return stats_; }
  // /proc/self/maps as the scan read it (while the other threads were stopped), for the report's
  // symbolizer: null if the scan read none.
  const char* maps() const { return maps_len_ ? maps_ : nullptr; }
  std::size_t maps_size() const { return maps_len_; }

 private:
  ScannedBlock* blocks_ = nullptr;
  std::size_t count_ = 0;
  std::size_t blocks_bytes_ = 0;
  char* maps_ = nullptr;  // taken over from the scan's Scanner
  std::size_t maps_cap_ = 0, maps_len_ = 0;
  ScanStats stats_;
};

}  // namespace heapledger::detail
