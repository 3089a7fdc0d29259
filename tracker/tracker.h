// The tracker's face to the shim: record an allocation, record a release, start, finish.
// Everything here may be called from any thread, at any point of the process's life, and from
// inside the tracker itself (then it only keeps the ledger consistent and records nothing).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/config.h"
#include "tracker/alloc_kind.h"
#include "tracker/quarantine.h"
#include "tracker/record.h"

namespace heapledger::detail::tracker {

// True once start() has set tracking up (and track=1). Read on every entry point.
extern std::atomic<bool> g_active;
HL_ALWAYS_INLINE bool active() { return g_active.load(std::memory_order_relaxed); }

// The program's frame that called the entry point: its return address and its stack pointer
// after the call returns (the entry point's CFA). The entry point knows them for free; with them
// a stack seen before is recognised without stepping through heapledger's own frames. Zero, or a
// return address inside heapledger (an entry point called from another): not known.
struct Caller {
  std::uintptr_t ra = 0, sp = 0;
};
// Where the function this is inlined into returns to (always-inline: that is the entry point).
#define HL_CALLER()                                                                   \
  ::heapledger::detail::tracker::Caller {                                             \
    reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)),                    \
        reinterpret_cast<std::uintptr_t>(__builtin_dwarf_cfa())                       \
  }

void on_alloc(void* p, std::size_t size, AllocKind kind, Caller caller = {});
// realloc resizes or moves a live block: its record leaves the ledger first (the pools may hand
// the address to another thread once it moved), and a block that did not come from the malloc
// family is reported as a mismatched release. Then either realloc_done() (the old block counts
// as freed; the new one comes in through on_alloc) or, where the pools could not do it,
// put_back() (the record as it was: same size, stack and kind). False if the record was not
// there: another thread freed the block after realloc found it live; that is reported as a
// double free, and the realloc must fail without touching the block.
bool take_for_realloc(void* p, Record* taken);
void realloc_done(const Record& taken);
void put_back(void* p, const Record& taken);
// realloc that copies: the family to free live block p with once its contents are copied. A block
// not of the malloc family is reported as passed to realloc (as take_for_realloc does), and its
// own family is returned, so that the free reports nothing more.
AllocKind realloc_release_kind(void* p);
// While one lives on this thread, a free of no live block is reported as a realloc's (the shim's
// realloc frees such a pointer to have it reported, and touches nothing).
class ReallocRelease {
 public:
  ReallocRelease();
  ~ReallocRelease();
  ReallocRelease(const ReallocRelease&) = delete;
  ReallocRelease& operator=(const ReallocRelease&) = delete;

 private:
  bool was_;
};

// What the shim must do with a block the program frees.
struct FreeOutcome {
  enum Action : std::uint8_t {
    kRelease,  // give it back to the pool
    kKeep,     // quarantined: the tracker holds it back
    kReject,   // misuse (double or invalid free): reported, the heap is left as it was
  } action = kRelease;
};
constexpr std::size_t kNoSize = ~std::size_t{0};

// A free through entry point family `kind`; size and align are what a sized or aligned delete
// passed (kNoSize / 0: none).
void on_release(void* p, AllocKind kind, std::size_t size, std::size_t align, FreeOutcome* out,
                Caller caller = {});

// A library was unloaded: return addresses seen from now on may belong to different code.
void note_unload();

// True if p is a live block in the ledger (realloc checks before touching a block).
bool is_live(const void* p);
// The size the program asked for the live block at p; false if the ledger has no record of it.
bool recorded_size(const void* p, std::size_t* size);

// What the tracker asks of the pools, passed in by the shim: whether an unknown pointer was ever a
// block start, which block slot a pointer points into, whether the calling thread holds one of
// their locks, and how the quarantine reads and gives back blocks.
struct PoolProbes {
  bool (*was_block)(const void*);
  std::uintptr_t (*block_containing)(const void*);
  bool (*lock_held)();
  Quarantine::Hooks quarantine;
};
void set_pool_probes(const PoolProbes& probes);

// Library constructor: options, runtime, warm-up. Safe to call more than once. argc and argv
// are what glibc passes every library constructor: the command line where /proc cannot be read.
void start(int argc, char** argv);
// Writes the exit report once per process (a forked child writes its own).
void finish();
// From our library destructor, inside the loader's _dl_fini: the report is left for an exit
// handler registered now, which glibc runs once _dl_fini has run every library's destructors.
void finish_after_destructors();
// Under a hard limit on address space or data, keeps room for the exit report (collect.cc). At
// the start, once recording.
void keep_report_room();
// From now on a stop signal (shim/stop_signals.h) that finds the default action writes the report
// before it ends the process (collect.cc). At the start, once recording.
void take_stop_signals();
// An allocation failed: the quarantine's blocks go back to the pools (a program that frees a
// reserve in its new_handler, or runs against ulimit -v, must get that memory back). True if any
// did, so that one more try may succeed. Does nothing inside the tracker.
bool release_held();
// A thread about to end the process without running exit handlers (_exit): writes the exit report
// if this is the process that was started (not a forked or vforked child) and nobody is on the
// way out yet; if another thread of this process is writing it, waits for it (while it makes
// progress). Returns the status to end with: `status`, or leak_exitcode/error_exitcode.
int before_immediate_exit(int status);
// A thread calling exit() (interposed): the first one goes on; one that comes while another is
// still on its way out waits for that one's exit report (see collect.cc).
void before_exit();

// The program put a file on fd 2 itself (dup2 or dup3 onto it, freopen of stderr): noted,
// for lines that can no longer reach the stderr the process started with
// (StreamIdentity::set_dev). Async-signal-safe; does nothing in a vforked child, whose fd 2 is
// not this process's though its memory is.
void note_stderr_set();

void prefork();
void postfork_parent();
void postfork_child();

}  // namespace heapledger::detail::tracker
