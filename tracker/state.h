// The tracker's process-wide state, shared by tracker.cc (recording) and collect.cc (the exit
// report). Everything is statically zero-initialised or set up in start(): nothing here has a
// destructor, because allocations keep arriving after static destructors ran.
#pragma once

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/os.h"
#include "shim/spin_lock.h"
#include "tracker/leak_scan.h"
#include "tracker/ledger.h"
#include "tracker/live_totals.h"
#include "tracker/modules.h"
#include "tracker/options.h"
#include "tracker/runtime_api.h"
#include "tracker/stack_table.h"
#include "tracker/thread_directory.h"
#include "tracker/tracker.h"

namespace heapledger::detail::tracker {

// Cumulative counts, kept per thread so counting costs no shared cache line; each thread's block
// is linked into a list that the report sums (blocks outlive their threads: counts are forever).
// Written by its thread only (load and store, no read-modify-write); a line of its own, so that
// no other thread's counting moves it (two threads' 32-byte blocks shared one: 21% of the samples
// of a 2-thread malloc/free loop under full tracking were in counting). The thread's slot of the
// live totals (see live_totals.h) shares the line and takes the next: others write it only to
// close it.
struct alignas(64) ThreadCounts {
  std::atomic<std::uint64_t> allocations{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::uint64_t> bytes_allocated{0};
  ThreadCounts* next = nullptr;
  LiveTotals::Slot slot;
  void add(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Batches of the thread's quarantined blocks, left by other threads (see Quarantine::publish):
  // a line of its own, as other threads write it.
  alignas(64) Quarantine::Inbox inbox;
};
static_assert(offsetof(ThreadCounts, inbox) == 128, "the counts and the slot take two lines");

struct Counters {
  std::atomic<ThreadCounts*> threads{nullptr};
  // Blocks of threads that have ended, for new threads to continue (counts are cumulative, so
  // the sums stay right); a thread-per-request server then uses one block per concurrent thread.
  SpinLock spare_lock;
  ThreadCounts* spare[256] HL_GUARDED_BY(spare_lock) = {};
  std::uint32_t n_spare HL_GUARDED_BY(spare_lock) = 0;
  ThreadCounts orphan;  // for threads whose block could not be mapped
  SpinLock orphan_lock;
  // Live bytes and blocks: exact wherever a new peak can be made (see live_totals.h).
  LiveTotals live;
};

// The highest live total so far, and each call site's share at that moment. A peak is named by
// its total (bytes, which only grows); a call site saves what it holds (StackRecord::peak_*) the
// first time it changes after the latest peak, so a site that has not changed since holds now
// what it held then. A new peak costs nothing more than its compare-and-swap, and each call site
// at most one copy per peak, where copying every site's totals at the peak took time in
// proportion to the number of call sites (done at every 1% of growth, it was 1.4-2.2% of g++'s
// compiler proper's time under tracking). Each call site's record is 24 bytes larger for it; the
// 16 MiB array of the copies (sparse) is gone. blocks and time_us are stored just after bytes.
struct Peak {
  alignas(64) std::atomic<std::int64_t> bytes{0};
  std::atomic<std::int64_t> blocks{0};
  std::atomic<std::uint64_t> time_us{0};
};

// Live bytes over time: a point when the total moved by 1% or 10 ms passed; when full, every
// other point is dropped and the spacing doubles, so any run fits.
struct Timeline {
  static constexpr std::uint32_t kCapacity = 4096;
  // Whether bytes is more than 1% away from `from` (and more than a byte per 100 of it).
  static bool moved(std::int64_t bytes, std::int64_t from) {
    return (bytes > from ? bytes - from : from - bytes) * 100 > from + 100;
  }
  struct Point {
    std::uint64_t t_us;
    std::int64_t bytes;
  };
  SpinLock lock;
  Point points[kCapacity] HL_GUARDED_BY(lock) = {};
  std::uint32_t count HL_GUARDED_BY(lock) = 0;
  std::uint64_t min_gap_us HL_GUARDED_BY(lock) = 10'000;
  // Copies of the last point, read without the lock to decide whether a new point is due.
  std::atomic<std::uint64_t> last_t_us{0};
  std::atomic<std::int64_t> last_bytes{-1};
  std::atomic<std::uint64_t> gap_us{10'000};
  // When a change that could not say the live total (threads' slots open, see live_totals.h)
  // last read every slot for it: at most once per gap_us / 8.
  std::atomic<std::uint64_t> last_read_us{0};
  // The time of the last change that moved the total by 1% but came too soon after the last
  // point (within gap_us / 8: within one tick of the clock, often) to be one, plus one (0: none
  // since the last point). The next point is preceded by one at that time, with the total as it
  // was before the next point's own change; the report adds one with the total at exit. Without
  // it, the curve stayed at the first change of a burst until whatever came next, seconds later
  // maybe (a user trial's). Written without the lock, once a tick at most.
  std::atomic<std::uint64_t> skipped_us{0};
};

// Heap misuse seen so far: every one counted, the first kMax kept with their stacks.
struct Errors {
  static constexpr std::uint32_t kMax = 1000;
  enum Kind : std::uint8_t { kDoubleFree, kInvalidFree, kMismatchedFree };
  struct Entry {
    Kind kind;
    bool has_alloc, has_free;
    std::uintptr_t address;
    std::uint32_t stack, alloc_stack, free_stack;
    const char* detail;  // static text: what did not match
    // A mismatched free: the families of the allocation and of the release (kInternal: none).
    AllocKind allocated = AllocKind::kInternal, released = AllocKind::kInternal;
    // An invalid free into a live block: where that block starts (0: none) and its size; its
    // allocation stack is alloc_stack.
    std::uintptr_t block = 0;
    std::uint64_t block_size = 0;
    // An invalid free of an address in a loaded module's image: that module's path (internal
    // memory, kept for the process's life), read when the error was: not under this lock, which
    // fork takes after the modules' (a review's deadlock, fork during the exit report).
    const char* module = nullptr;
    // The thread that made the call: its id, and its name then (prctl's, 15 bytes and a zero).
    pid_t tid = 0;
    char thread_name[16] = {};
    // A sized delete's size (0: none).
    std::uint64_t released_size = 0;
    // A double free: the thread of the first free, and its name then (0: not known).
    pid_t free_tid = 0;
    char free_thread_name[16] = {};
  };
  SpinLock lock;
  Entry entries[kMax] HL_GUARDED_BY(lock) = {};
  std::uint32_t kept HL_GUARDED_BY(lock) = 0;
  std::atomic<std::uint64_t> total{0};
};

// Stack ranges of threads that have ended, recorded by a thread-exit destructor; the newest
// kMax are kept (an older one forgotten is scanned as a root again: safe, at worst a leak hides).
struct DeadStacks {
  static constexpr std::uint32_t kMax = 1024;
  SpinLock lock;
  RootPolicy::Range ranges[kMax] HL_GUARDED_BY(lock) = {};
  std::uint32_t next HL_GUARDED_BY(lock) = 0;
  std::uint32_t count HL_GUARDED_BY(lock) = 0;
};

// Threads that have been through their exit destructor here (remember_dead_stack in tracker.cc):
// only the C library's end of a thread is left for them. The leak scan asks about threads that
// never take its signal (StopTheWorld::stop). By thread id, one entry per id modulo kSize (two
// ending at once may share one: then the first is not known, and waited for), with when it was
// marked (CLOCK_BOOTTIME): a mark from before a thread started was its id's previous owner's (the
// kernel hands ids out again; a thread that never allocates never clears it), see look_at in
// stop_world.cc.
struct EndedThreads {
  static constexpr std::size_t kSize = 32768;  // pid_max's default
  struct Entry {
    std::atomic<pid_t> tid;
    std::atomic<std::uint64_t> marked_ns;
  };
  // Mapped at the first mark (an internal mapping, which the scan skips): a process none of whose
  // threads ends needs none of its 512 KiB.
  std::atomic<Entry*> table{nullptr};

  void mark(pid_t tid) {
    Entry* entries = table.load(std::memory_order_acquire);
    if (!entries) {
      constexpr std::size_t kBytes = kSize * sizeof(Entry);
      auto* mapped = static_cast<Entry*>(os::map_internal(kBytes));  // zeroed: no id marked
      if (!mapped) return;
      if (table.compare_exchange_strong(entries, mapped, std::memory_order_acq_rel))
        entries = mapped;
      else
        os::unmap_internal(mapped, kBytes);  // another thread's went in first: entries is it
    }
    timespec now{};
    clock_gettime(CLOCK_BOOTTIME, &now);
    entries[slot(tid)].marked_ns.store(static_cast<std::uint64_t>(now.tv_sec) * 1000000000u +
                                           static_cast<std::uint64_t>(now.tv_nsec),
                                       std::memory_order_relaxed);
    entries[slot(tid)].tid.store(tid, std::memory_order_release);
  }
  void unmark(pid_t tid) {
    Entry* entries = table.load(std::memory_order_acquire);
    pid_t marked = tid;
    if (entries)
      entries[slot(tid)].tid.compare_exchange_strong(marked, 0, std::memory_order_relaxed);
  }
  // When tid was marked (ns of CLOCK_BOOTTIME), 0 if it is not.
  std::uint64_t marked_at(pid_t tid) const {
    const Entry* entries = table.load(std::memory_order_acquire);
    if (!entries || entries[slot(tid)].tid.load(std::memory_order_acquire) != tid) return 0;
    return entries[slot(tid)].marked_ns.load(std::memory_order_relaxed);
  }
  static std::size_t slot(pid_t tid) { return static_cast<std::size_t>(tid) % kSize; }
};

// How stacks are captured (the unwind option), and what unwind=verify found.
struct Unwinding {
  enum Mode : std::uint8_t { kFast, kLibunwind, kVerify };
  Mode mode = kFast;
  std::atomic<std::uint64_t> stacks{0}, fallbacks{0}, differed{0};  // counted in kVerify only
  std::atomic<std::uintptr_t> first_difference{0};  // frame address where the first one differed
};

struct State {
  Options options;
  Unwinding unwinding;
  OptionWarnings warnings;
  const RuntimeApi* runtime = nullptr;
  std::uintptr_t self_start = 0, self_end = 0;  // libheapledger.so, skipped in backtraces
  const char* self_path = nullptr;              // and its absolute path (the module map's)
  // /proc/self/cmdline as the program started (its words NUL-terminated): a program may rewrite
  // its argv later (openssl blanks a password given with -k).
  const char* cmdline = nullptr;
  std::size_t cmdline_len = 0;
  // The clock's origin (CLOCK_MONOTONIC): the first event or the tracker's start, whichever came
  // first (origin_ns in tracker.cc).
  std::atomic<std::uint64_t> start_ns{0};
  Counters counters;
  Ledger ledger;
  ModuleMap modules;
  StackTable stacks;
  Peak peak;
  Timeline timeline;
  Errors errors;
  DeadStacks dead_stacks;
  EndedThreads ended_threads;
  ThreadDirectory threads;  // thread numbers (records') to ids and names, for leak sites
  Quarantine quarantine;
  PoolProbes pool{};
  StreamIdentity stdout_identity = {};
  StreamIdentity stderr_identity = {};
  std::atomic<std::uint32_t> next_thread{0};
  std::atomic<std::uint32_t> unload_epoch{0};  // dlclose calls so far
  std::atomic<bool> recording{false};  // start() done: allocations get stacks and timestamps
  // Pending frees taken (tracker.cc): the quarantine is on and on_error is not abort.
  bool defer_frees = false;
  // The program has an operator new or delete of its own (shim/program_operators.h):
  // a block from malloc may come back through delete, or one from new through free.
  bool foreign_operators = false;
  // The exit report: who began it (process id << 32 | thread id; 0: not begun), whether it is
  // done, and a count its writer bumps as it goes (symbolized stacks), which threads waiting on
  // it watch.
  std::atomic<std::uint64_t> reporter{0};
  // The thread that called exit() first (same encoding; 0: none yet): see before_exit().
  std::atomic<std::uint64_t> exiting{0};
  // The thread that left the report for an exit handler (finish_after_destructors), until it runs.
  std::atomic<std::uint64_t> finish_left_by{0};
  // The thread that writes that report on its way out through _exit() (same encoding).
  std::atomic<std::uint64_t> ending_now{0};
  std::atomic<bool> reported{false};
  // The report is written from exit()'s handlers (finish_after_destructors): exit writes what stdio
  // holds after them anyway, so the report may have it written first (ReportRequest::flush_stdout).
  std::atomic<bool> stdio_flushed_after{false};
  std::atomic<std::uint64_t> report_progress{0};
  // The descriptor the report's writer is writing to now (-1: none): a write that waits for a
  // slow reader is progress too (wait_for_report).
  std::atomic<int> report_writing_to{-1};
  // The process that started tracking (not updated in a forked child): the one whose _exit()
  // writes the report (see before_immediate_exit).
  std::uint32_t start_pid = 0;
  // In a forked child, when it was forked (microseconds since the origin, which it shares with
  // its parent: its times and its blocks' count from there); -1 in the process that started.
  std::int64_t forked_at_us = -1;
  std::uint64_t event_floor_us = 0;  // no event is stamped earlier (a forked child's: its fork)
  // This process's id: the started one's, then a forked child's own (not a vforked one's, which
  // shares this memory). 0 before the start.
  std::uint32_t pid = 0;
};
extern State g_state;

std::uint64_t now_us();
// Sums of every thread's counts.
struct CountTotals {
  std::uint64_t allocations = 0, frees = 0, bytes_allocated = 0;
};
// threads_stopped: the other threads are stopped (the exit scan), so no lock is waited for.
CountTotals count_totals(bool threads_stopped = false);
// Marks the calling thread as inside the tracker for good (the exit report's thread).
void tl_busy_forever();
// Whether the calling thread is inside the tracker (a signal handler interrupted it there).
bool in_tracker();
// In a forked child: nothing of its parent's report in progress (a signal held for it, the signal
// that ends it, the timers of a stop signal's report) is the child's (collect.cc).
void forget_parents_ending();
// Settles the calling thread's pending frees (tracker.cc): before the exit report.
void settle_own_frees();
// The reporter module, loaded on first use; null if it cannot be loaded.
const ReporterApi* reporter();
// True if the calling thread holds any heapledger lock: it was interrupted inside the allocator
// or the tracker (exit() from a signal handler), and waiting for any lock could never end.
bool lock_held_by_this_thread();
// unwind=verify: one line saying how many stacks the fast unwinder got right.
void report_unwind_verification();
// on_error=abort: writes this error to the log at once, then aborts the process.
[[noreturn]] void abort_on_error(const Errors::Entry& e);

}  // namespace heapledger::detail::tracker
