// Recording: what happens on every tracked allocation and release, and the tracker's start-up.
// The per-call work is: unwind, intern the stack, one ledger shard insert, a few atomic adds.
#include "tracker/tracker.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "shim/fd_guard.h"
#include "shim/kernel_call.h"
#include "shim/os.h"
#include "shim/pool.h"
#include "shim/program_operators.h"
#include "shim/single_thread.h"
#include "shim/stop_signals.h"
#include "shim/system_heap.h"
#include "tracker/cancel_held.h"
#include "tracker/fast_unwind.h"
#include "tracker/internal_alloc.h"
#include "tracker/state.h"
#include "tracker/write_signals.h"

// The stack pointer the process started with (the dynamic linker's: argc is there).
extern "C" void* __libc_stack_end;

namespace heapledger::detail::tracker {

// On from the first call: blocks allocated before start() are recorded too (without a stack),
// unless the environment the process started with says track=0 (untracked_from_the_start).
constinit std::atomic<bool> g_active{true};
constinit State g_state;
constinit SpinLock g_reporter_lock;  // loading the reporter module, once

namespace {

// A free whose settling waits for its block's ledger record to arrive ("Pending frees" below).
struct PendingFree {
  std::uintptr_t addr;
  std::size_t size;   // what a sized delete passed (kNoSize: none)
  std::size_t align;  // what an aligned delete passed (0: none)
  std::uint32_t free_stack;
  AllocKind kind;
};

// Per-thread: the re-entry guard (set while the tracker itself runs, so that allocations made by
// libunwind, the dynamic linker or the report writers are served but not recorded), a small
// thread number for the ledger, and the frees waiting to be settled ("Pending frees" below).
struct ThreadState {
  bool busy;
  std::uint32_t index;    // 0: not assigned yet
  ThreadCounts* counts;   // null: not registered yet
  bool exit_hooked;       // the thread-exit destructor will run for it (remember_dead_stack)
  bool counts_closed;     // past that destructor: it counts into the shared orphan block
  Quarantine::Local quarantine;
  std::uint32_t frees;    // the program's frees, for reading the clock on only some of them
  bool freeing;           // its last tracked call was a free (a run of frees: they may wait)
  bool realloc_release;  // the free under way is a realloc's of no live block (see report_bad_free)
  bool pending_changing;  // the ring below is being changed (a signal handler must not touch it)
  static constexpr std::uint32_t kMaxPending = 8;
  std::uint32_t pending_head, pending_count;
  PendingFree pending[kMaxPending];  // a settled entry's address is cleared: no stale root
};
thread_local ThreadState tl_thread HL_TLS;

class BusyScope {
 public:
  BusyScope() : was_busy_(tl_thread.busy) { tl_thread.busy = true; }
  ~BusyScope() { tl_thread.busy = was_busy_; }

 private:
  bool was_busy_;  // nested scopes (and the exit report's thread, busy for good) stay busy
};

std::uint64_t monotonic_ns(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Times are counted from the tracker's start, or from the first event before it: a library whose
// constructor runs before ours allocates and frees (curl's, ssh's, mariadbd's). Counted from
// zero meanwhile, those events had the machine's uptime for a time, a timeline point 23 hours
// past the end of a 31 ms run, and every later point held at it, so none was added (a user
// trial's).
std::uint64_t origin_ns() {
  std::uint64_t origin = g_state.start_ns.load(std::memory_order_relaxed);
  if (HL_LIKELY(origin != 0)) return origin;
  const std::uint64_t now = monotonic_ns();
  return g_state.start_ns.compare_exchange_strong(origin, now, std::memory_order_relaxed) ? now
                                                                                          : origin;
}

// Event times (a block's allocation, the peak, the timeline) come from the kernel's tick clock:
// read in ~5 ns, where the precise clock costs ~22 ns on every allocation and free (micro_clock),
// with a resolution of 1-4 ms (heaptrack's timer ticks every 10 ms). It lags the precise clock by
// less than a tick, so no event is stamped after the report's own time.
std::uint64_t event_us() {
  const std::uint64_t ns = monotonic_ns(CLOCK_MONOTONIC_COARSE);
  const std::uint64_t origin = origin_ns();
  return std::max(ns > origin ? (ns - origin) / 1000 : 0, g_state.event_floor_us);
}

// A thread's first number, entered in the directory with its id (the report's leak sites name
// the threads that allocated them).
HL_NOINLINE std::uint32_t take_thread_index() {
  tl_thread.index = g_state.next_thread.fetch_add(1, std::memory_order_relaxed) + 1;
  g_state.threads.enter(tl_thread.index, static_cast<pid_t>(os::kernel_call(SYS_gettid)));
  return tl_thread.index;
}

std::uint32_t thread_index() {
  if (HL_UNLIKELY(tl_thread.index == 0)) return take_thread_index();
  return tl_thread.index;
}

pthread_key_t g_exit_key;
bool g_exit_key_ready = false;

// Thread exit: its counts block is left for a thread that starts later.
void recycle_counts() {
  ThreadCounts* mine = tl_thread.counts;
  tl_thread.counts_closed = true;  // its destructors and the C library may still allocate
  if (!mine || mine == &g_state.counters.orphan) return;
  Counters& c = g_state.counters;
  c.live.close(&mine->slot);  // its headroom is given back; later changes go to the shared total
  SpinGuard guard(c.spare_lock);
  if (c.n_spare < sizeof c.spare / sizeof c.spare[0]) {
    c.spare[c.n_spare++] = mine;
    tl_thread.counts = nullptr;
  }
}

std::uint32_t settle_pending();

// Thread exit: also remember where this thread's stack was, so the leak scan does not take the
// stale frames glibc leaves in its stack cache for roots.
void remember_dead_stack(void*) {
  BusyScope busy;
  // Last of all (below) the mark that this thread's own code is done, as far as heapledger can
  // tell: the C library's end of a thread follows, and the program's own key destructors (keys
  // created after heapledger's), which run with the thread's mask, where SIGCANCEL is open. Not
  // for a thread cancelled with every signal blocked: it ends inside glibc's SIGCANCEL handler,
  // SIGCANCEL blocked, its key destructors then running with the mask of the C library's end (a
  // review's).
  struct Ended {
    ~Ended() {
      constexpr int kSigCancel = 32;  // glibc's, the first real-time signal
      std::uint64_t blocked = 0;
      if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &blocked, sizeof blocked) == 0 &&
          !(blocked & (std::uint64_t{1} << (kSigCancel - 1))))
        g_state.ended_threads.mark(static_cast<pid_t>(syscall(SYS_gettid)));
    }
  } ended;
  g_state.quarantine.thread_exit(tl_thread.quarantine);  // first: its inbox is in the counts
  if (tl_thread.index != 0) g_state.threads.leave(tl_thread.index);  // its name as it ends
  recycle_counts();
  fast_unwind::thread_exit();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
    DeadStacks& d = g_state.dead_stacks;
    SpinGuard guard(d.lock);
    auto lo = reinterpret_cast<std::uintptr_t>(addr);
    d.ranges[d.next] = RootPolicy::Range{lo, lo + size};
    d.next = (d.next + 1) % DeadStacks::kMax;
    if (d.count < DeadStacks::kMax) ++d.count;
  }
  pthread_attr_destroy(&attr);
}

ThreadCounts* reuse_counts() {
  Counters& c = g_state.counters;
  SpinGuard guard(c.spare_lock);
  return c.n_spare ? c.spare[--c.n_spare] : nullptr;
}

// Whether this thread's exit destructor will run (remember_dead_stack): registered now if it was
// not when the thread first counted (before start(), as the main thread).
HL_NOINLINE bool hook_thread_exit() {
  if (!g_exit_key_ready) return false;
  return tl_thread.exit_hooked = pthread_setspecific(g_exit_key, &g_exit_key) == 0;
}

HL_NOINLINE ThreadCounts* register_counts() {
  // Every thread that allocates passes here once: arrange to hear of its exit.
  if (!tl_thread.exit_hooked) hook_thread_exit();
  g_state.ended_threads.unmark(static_cast<pid_t>(syscall(SYS_gettid)));
  if (ThreadCounts* reused = reuse_counts()) return tl_thread.counts = reused;
  // internal_alloc aligns to 16 bytes; the counts want a cache line.
  constexpr std::size_t kAlign = alignof(ThreadCounts);
  void* raw = internal_alloc(sizeof(ThreadCounts) + kAlign - 16);
  if (!raw) return &g_state.counters.orphan;
  auto* tc = new (reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(raw) + kAlign - 1) &
                                          ~(kAlign - 1))) ThreadCounts;
  g_state.counters.live.attach(&tc->slot);
  ThreadCounts* head = g_state.counters.threads.load(std::memory_order_relaxed);
  do tc->next = head;
  while (!g_state.counters.threads.compare_exchange_weak(head, tc, std::memory_order_release));
  return tl_thread.counts = tc;
}

// Past its exit destructor (other keys' destructors, the C library's own freeing after them) a
// thread counts into the shared orphan block: a block it took then would never be given back,
// one for each thread a server runs (a review's: 12.8 MB over 19,000 threads, with blocks of
// 640 bytes). So does a signal handler that interrupted the thread's first allocation inside
// internal_alloc (its stack memo): registering would wait for that lock forever (a review's
// program with handlers that free hung in 1 of 8 runs).
HL_ALWAYS_INLINE ThreadCounts& my_counts() {
  if (HL_LIKELY(tl_thread.counts != nullptr)) return *tl_thread.counts;
  return tl_thread.counts_closed || internal_alloc_lock_held() ? g_state.counters.orphan
                                                               : *register_counts();
}

// The thread's slot of the live totals: none in the shared orphan block.
LiveTotals::Slot* slot_of(ThreadCounts& tc) {
  // Past its exit destructor a thread may still count in its own block (the spare list was
  // full), but its slot stays closed: no thread would give its headroom back (a review's).
  return &tc == &g_state.counters.orphan || tl_thread.counts_closed ? nullptr : &tc.slot;
}

std::int64_t peak_so_far() { return g_state.peak.bytes.load(std::memory_order_relaxed); }

// This thread's counts. The orphan block is shared, so it is only touched under its lock (not
// from a signal handler that interrupted its own thread in there: that count is lost).
void count(ThreadCounts& tc, std::uint64_t allocations, std::uint64_t frees, std::uint64_t bytes) {
  if (HL_UNLIKELY(&tc == &g_state.counters.orphan)) {
    if (g_state.counters.orphan_lock.held_by_this_thread()) return;
    SpinGuard guard(g_state.counters.orphan_lock);
    tc.add(tc.allocations, allocations), tc.add(tc.frees, frees), tc.add(tc.bytes_allocated, bytes);
    return;
  }
  if (allocations) tc.add(tc.allocations, allocations), tc.add(tc.bytes_allocated, bytes);
  if (frees) tc.add(tc.frees, frees);
}

bool in_self(std::uintptr_t a) { return a >= g_state.self_start && a < g_state.self_end; }

using fast_unwind::kOwnFramesMax;
// The program's frames within raw[0..n): everything up to the last frame inside libheapledger.so
// (the entry point) is ours. Returns where the program's start; *depth says how many (at most
// max_frames).
int program_start(const std::uintptr_t* raw, int n, int max_frames, std::uint32_t* depth) {
  int first = 0;
  for (int i = 0; i < n && i < kOwnFramesMax; ++i)
    if (in_self(raw[i])) first = i + 1;
  *depth = static_cast<std::uint32_t>(std::min(n - first, max_frames));
  return first;
}

// libunwind's walk (it finds modules with dl_iterate_phdr: see ModuleMap::loader_calls); 0
// frames while a fork is being made.
int libunwind_backtrace(std::uintptr_t* raw, int max) {
  ModuleMap::LoaderCall loader(g_state.modules.loader_calls());
  return loader ? g_state.runtime->backtrace(reinterpret_cast<void**>(raw), max) : 0;
}

std::uint32_t libunwind_frames(std::uintptr_t* out, int max_frames) {
  std::uintptr_t raw[kMaxFramesLimit + kOwnFramesMax];
  CancelHeld no_cancel;
  int n = libunwind_backtrace(raw, max_frames + kOwnFramesMax);
  std::uint32_t depth;
  int first = program_start(raw, n, max_frames, &depth);
  std::copy(raw + first, raw + first + depth, out);
  return depth;
}

// unwind=verify: the stack the fast path found against libunwind's. Compared in place: threads
// with 16 KiB stacks run this too.
HL_NOINLINE void verify_unwind(const std::uintptr_t* frames, std::uint32_t depth, int max_frames) {
  Unwinding& u = g_state.unwinding;
  std::uintptr_t* raw = fast_unwind::scratch();
  if (!raw) return;
  static_assert(fast_unwind::kScratchWords >= kMaxFramesLimit + kOwnFramesMax);
  CancelHeld no_cancel;
  int n = libunwind_backtrace(raw, max_frames + kOwnFramesMax);
  std::uint32_t expected;
  const std::uintptr_t* check = raw + program_start(raw, n, max_frames, &expected);
  u.stacks.fetch_add(1, std::memory_order_relaxed);
  std::uint32_t i = 0;
  while (i < depth && i < expected && frames[i] == check[i]) ++i;
  if (i == depth && i == expected) return;
  u.differed.fetch_add(1, std::memory_order_relaxed);
  std::uintptr_t none = 0;
  u.first_difference.compare_exchange_strong(none, i < expected ? check[i] : i < depth ? frames[i] : 1);
}

HL_NOINLINE void verify_memo(std::uint32_t stack, int max_frames) {
  const StackRecord* r = g_state.stacks.get(stack);
  if (r) verify_unwind(r->frames(), r->depth, max_frames);
}

// The calling frame alone, as the entry point saw it (none if it is not the program's).
std::uint32_t caller_only(Caller caller, std::uint32_t epoch) {
  const std::uintptr_t ra = caller.ra;
  return g_state.stacks.intern(&ra, ra != 0 && !in_self(ra) ? 1 : 0, epoch);
}

// Through libunwind: its buffers are on the stack on this path only. Where it gives no frame (a
// fork is waiting for heapledger's calls into the loader: see ModuleMap::LoaderCalls), the
// calling frame: a thread's TLS vector allocated by pthread_create beside a fork had no stack,
// and so the built-in suppression for those could not know it, and it was reported "possibly
// lost ... (no stack recorded)" (2 runs in about 35 of a user trial's program).
HL_NOINLINE std::uint32_t libunwind_stack(int max_frames, std::uint32_t epoch, Caller caller) {
  std::uintptr_t frames[kMaxFramesLimit];
  const std::uint32_t depth = libunwind_frames(frames, max_frames);
  return depth != 0 ? g_state.stacks.intern(frames, depth, epoch) : caller_only(caller, epoch);
}

// A thread past its own exit (its later TLS destructors, signal handlers then): the fast
// unwinder's walk into a buffer of this frame's, where the stack has room for it; else the
// calling frame alone.
HL_NOINLINE std::uint32_t stack_after_exit(int max_frames, std::uint32_t epoch, Caller caller) {
  std::uintptr_t frames[fast_unwind::kFrameWords];
  const int n = fast_unwind::capture_after_exit(frames, max_frames, epoch);
  return n > 0 ? g_state.stacks.intern(frames, static_cast<std::uint32_t>(n), epoch)
               : caller_only(caller, epoch);
}

// The interned stack of the calling thread's program frames: the fast unwinder (and its memo)
// where it applies, libunwind elsewhere. unwind=verify checks every fast answer against libunwind.
std::uint32_t current_stack(int max_frames = g_state.options.max_frames, Caller caller = {}) {
  const Unwinding::Mode mode = g_state.unwinding.mode;
  const std::uint32_t epoch = g_state.unload_epoch.load(std::memory_order_relaxed);
  if (HL_LIKELY(mode != Unwinding::kLibunwind)) {
    static_assert(fast_unwind::kFrameWords >= kMaxFramesLimit);
    std::uintptr_t* frames = fast_unwind::frame_buffer();
    std::uint32_t memo;
    const int n = frames
                      ? fast_unwind::capture(frames, max_frames, epoch, &memo, caller.ra, caller.sp)
                  : fast_unwind::thread_ended() ? fast_unwind::kThreadEnded
                                                : fast_unwind::kUseLibunwind;
    if (HL_LIKELY(n == fast_unwind::kMemoHit)) {
      if (HL_UNLIKELY(mode == Unwinding::kVerify)) verify_memo(memo, max_frames);
      return memo;
    }
    if (HL_LIKELY(n >= 0)) {
      auto depth = static_cast<std::uint32_t>(n);
      if (HL_UNLIKELY(mode == Unwinding::kVerify)) verify_unwind(frames, depth, max_frames);
      std::uint32_t stack = g_state.stacks.intern(frames, depth, epoch);
      fast_unwind::remember(stack);
      return stack;
    }
    if (n == fast_unwind::kThreadEnded &&
        fast_unwind::room_after_exit(sizeof(std::uintptr_t) * fast_unwind::kFrameWords))
      return stack_after_exit(max_frames, epoch, caller);
    if (n == fast_unwind::kThreadEnded || n == fast_unwind::kCallerOnly)
      return caller_only(caller, epoch);  // the function that did it
  }
  if (HL_UNLIKELY(mode == Unwinding::kVerify)) g_state.unwinding.fallbacks.fetch_add(1, std::memory_order_relaxed);
  return libunwind_stack(max_frames, epoch, caller);
}

// After this thread's own change to its site (on_alloc): the peak includes it. The new total is
// the peak's name (sites compare it with the one they last saved for), claimed by this one
// compare-and-swap: a count bumped after it came late when another thread overtook (a review's:
// a number for no peak made sites save, later, over what they held at the real one).
void note_peak(std::int64_t live, std::uint64_t t_us) {
  Peak& pk = g_state.peak;
  std::int64_t seen = pk.bytes.load(std::memory_order_relaxed);
  while (live > seen) {
    if (pk.bytes.compare_exchange_weak(seen, live, std::memory_order_relaxed)) {
      pk.blocks.store(g_state.counters.live.folded_blocks(), std::memory_order_relaxed);
      pk.time_us.store(t_us, std::memory_order_relaxed);
      break;
    }
  }
}

// A point is due when 10 ms passed or the total moved by 1%, but not sooner than gap_us / 8
// after the last one (a moved total that comes sooner is noted: Timeline::skipped_us); checked
// without the lock first, because nearly every call ends there.
bool timeline_point_due(Timeline& tl, std::int64_t live, std::uint64_t t_us) {
  std::int64_t last = tl.last_bytes.load(std::memory_order_relaxed);
  std::uint64_t gap = tl.gap_us.load(std::memory_order_relaxed);
  std::uint64_t last_t = tl.last_t_us.load(std::memory_order_relaxed);
  if (last < 0 || t_us - last_t >= gap) return true;
  if (!Timeline::moved(live, last)) return false;
  if (t_us - last_t >= gap / 8) return true;
  if (tl.skipped_us.load(std::memory_order_relaxed) != t_us + 1)
    tl.skipped_us.store(t_us + 1, std::memory_order_relaxed);
  return false;
}

// change: what this allocation or free changed the total by (live includes it).
void note_timeline(std::int64_t live, std::int64_t change, bool exact, std::uint64_t t_us);

// A free reads the clock (frees have no other use for it) only when live bytes moved by 1% since
// the last point, or on every 64th free of the thread, for a point due by time alone.
void note_timeline_on_free(std::int64_t live, std::int64_t change, bool exact) {
  const std::int64_t last = g_state.timeline.last_bytes.load(std::memory_order_relaxed);
  if (last >= 0 && !Timeline::moved(live, last) && (++tl_thread.frees & 63) != 0) return;
  note_timeline(live, change, exact, event_us());
}

void add_timeline_point(Timeline& tl, Timeline::Point point) HL_REQUIRES(tl.lock) {
  if (tl.count == Timeline::kCapacity) {  // thin out: keep every other point
    for (std::uint32_t i = 0; i < Timeline::kCapacity / 2; ++i) tl.points[i] = tl.points[2 * i + 1];
    tl.count = Timeline::kCapacity / 2;
    tl.min_gap_us *= 2;
  }
  tl.points[tl.count++] = point;
}

// exact: live is the live total (LiveTotals::Change). If not, other threads' slots are read for
// it once a point may be due (a review's: with only the thread's own slot, points were 18 KB where
// 2.5 MB were live, or 65 MB where 256 KB were), at most once per gap_us / 8.
void note_timeline(std::int64_t live, std::int64_t change, bool exact, std::uint64_t t_us) {
  Timeline& tl = g_state.timeline;
  if (!timeline_point_due(tl, live, t_us)) return;
  if (!exact) {
    std::uint64_t read = tl.last_read_us.load(std::memory_order_relaxed);
    if (t_us - read < tl.gap_us.load(std::memory_order_relaxed) / 8 ||
        !tl.last_read_us.compare_exchange_strong(read, t_us, std::memory_order_relaxed))
      return;
    live = g_state.counters.live.estimate();
    if (!timeline_point_due(tl, live, t_us)) return;
  }
  if (!tl.lock.try_lock()) return;  // approximate by design: never wait for it
  // Threads read the clock before taking the lock: a point never goes back in time.
  if (tl.count > 0 && t_us < tl.points[tl.count - 1].t_us) t_us = tl.points[tl.count - 1].t_us;
  bool add = tl.count == 0;
  if (!add) {
    const Timeline::Point& last = tl.points[tl.count - 1];
    add = (t_us - last.t_us >= tl.min_gap_us || Timeline::moved(live, last.bytes)) &&
          t_us - last.t_us >= tl.min_gap_us / 8;
  }
  if (add) {
    // A change skipped since the last point (as that one's tick ended, or a burst's last): the
    // total then was this one's before its own change, but for changes too small to be due.
    const std::uint64_t skipped = tl.skipped_us.exchange(0, std::memory_order_relaxed);
    if (skipped != 0 && tl.count > 0 && skipped - 1 >= tl.points[tl.count - 1].t_us &&
        skipped - 1 <= t_us && Timeline::moved(live - change, tl.points[tl.count - 1].bytes))
      add_timeline_point(tl, Timeline::Point{skipped - 1, live - change});
    add_timeline_point(tl, Timeline::Point{t_us, live});
  }
  tl.last_t_us.store(tl.points[tl.count - 1].t_us, std::memory_order_relaxed);
  tl.last_bytes.store(tl.points[tl.count - 1].bytes, std::memory_order_relaxed);
  tl.gap_us.store(tl.min_gap_us, std::memory_order_relaxed);
  tl.lock.unlock();
}

// With threads, a site that two of them change just after a new peak may have the other one's
// change counted at the peak (it changes the site while this one saves it): no worse than
// reading every site while others change them, as a copy of all sites at the peak would.
void adjust_site(std::uint32_t stack, std::int64_t bytes, std::int64_t blocks) {
  if (StackRecord* r = g_state.stacks.get(stack)) {
    const auto peak =
        static_cast<std::uint64_t>(g_state.peak.bytes.load(std::memory_order_relaxed));
    if (std::uint16_t save; HL_UNLIKELY(r->claim_save(peak, &save)))
      r->store_save(save, r->live_bytes.load(std::memory_order_relaxed),
                    r->live_blocks.load(std::memory_order_relaxed));
    add_relaxed(r->live_bytes, bytes);
    add_relaxed(r->live_blocks, blocks);
  }
}

// Where is libheapledger.so? Its frames are cut from every backtrace.
void find_self() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&find_self), &info)) return;
  std::uint16_t m = g_state.modules.find(reinterpret_cast<std::uintptr_t>(&find_self));
  if (m == ModuleMap::kUnknown) return;
  Module self = g_state.modules.get(m);
  g_state.self_start = self.start;
  g_state.self_end = self.end;
  g_state.self_path = self.path;
}

#ifndef HEAPLEDGER_RUNTIME_DEPS
#define HEAPLEDGER_RUNTIME_DEPS ""
#endif

// The runtime's libraries (libunwind and what it needs), loaded by their full paths before it
// (HEAPLEDGER_RUNTIME_DEPS, from tracker/CMakeLists.txt): its DT_NEEDED then finds them loaded.
// Found through its run path instead, each was looked for in eight subdirectories of the
// directory first (glibc-hwcaps/x86-64-v4 .. tls/x86_64: twenty failed opens and stats, about
// 20 us of every tracked process). One that will not load is left to the run path, as before,
// and its error to no one: the program's next dlerror() would have read ours.
void load_runtime_libraries() {
  const char* list = HEAPLEDGER_RUNTIME_DEPS;
  char path[4096];
  while (*list) {
    const char* end = std::strchr(list, ':');
    if (!end) end = list + std::strlen(list);
    const auto len = static_cast<std::size_t>(end - list);
    if (len < sizeof path) {
      std::memcpy(path, list, len);
      path[len] = 0;
      if (!dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) dlerror();
    }
    list = *end ? end + 1 : end;
  }
}

// The private modules live next to this library (build tree and install tree alike). Its path
// as the dynamic linker has it is relative where LD_PRELOAD was: the reporter, loaded at exit,
// was not found after the program changed its directory (the report lost); the module map
// made it absolute at start. links_unwinder: the module links libunwind (the runtime; looking for
// it in the reporter failed, which LD_DEBUG=libs showed as a fatal symbol lookup error: a user
// trial).
void* load_module(const char* file, const char* entry_name, bool links_unwinder) {
  const char* self = g_state.self_path;
  Dl_info info;
  if (!self && dladdr(reinterpret_cast<void*>(&load_module), &info)) self = info.dli_fname;
  if (!self) return nullptr;
  char path[4096];
  const char* slash = std::strrchr(self, '/');
  int dir_len = slash ? static_cast<int>(slash - self) : 1;
  std::snprintf(path, sizeof path, "%.*s/%s", dir_len, slash ? self : ".", file);
  if (links_unwinder) load_runtime_libraries();
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    stderr_line("heapledger: cannot load %s: %s\n", path, dlerror());
    return nullptr;
  }
  // Before the entry point starts libunwind (and its pipe).
  if (links_unwinder) fd_guard::find_unwinder(handle);
  auto entry = reinterpret_cast<void* (*)()>(dlsym(handle, entry_name));
  void* api = entry ? entry() : nullptr;
  if (!api || *static_cast<const int*>(api) != kRuntimeAbiVersion) {
    stderr_line("heapledger: %s does not match this library\n", path);
    return nullptr;
  }
  return api;
}

// Whose malloc the program calls, if not ours: the executable's own (rustc links jemalloc in,
// unprefixed; programs link mimalloc or tcmalloc statically) or a library's preloaded ahead of
// ours; the dynamic linker binds every module's malloc to it, libc's too. Its answer alone does
// not tell: an executable that takes malloc's address has a canonical PLT entry for it, which
// dlsym returns (python3), while its calls still reach ours. So two blocks are asked of that
// malloc and looked for in the pools: each must lie in a block of ours, and not the same one.
// A wrapper that puts a header before each block (libmemusage, preloaded ahead of us) passes; an
// allocator that carves its blocks out of a chunk it got from ours does not (its blocks never
// reach us one by one, and its free would get the reporter's).
// Ours may be the one bound and still not the one that runs: valgrind redirects every call to
// malloc to its own, below the dynamic linker. Under valgrind (LD_PRELOAD reaches its program)
// heapledger recorded nothing, reported "no heap allocations", and its leak scan's reads made
// memcheck report millions of errors and change its exit status (a user trial). So the test
// runs on our own malloc too; kIntercepted says so.
constexpr const char* kIntercepted = "";
const char* foreign_malloc() {
  auto* winner = reinterpret_cast<void* (*)(std::size_t)>(dlsym(RTLD_DEFAULT, "malloc"));
  auto* release = reinterpret_cast<void (*)(void*)>(dlsym(RTLD_DEFAULT, "free"));
  if (!winner || !release) return nullptr;
  void* first = winner(24);
  void* second = winner(24);
  const std::uintptr_t a = first ? g_state.pool.block_containing(first) : 0;
  const std::uintptr_t b = second ? g_state.pool.block_containing(second) : 0;
  const bool ours = !first || !second || (a != 0 && b != 0 && a != b);
  release(second);
  release(first);
  if (ours) return nullptr;
  if (in_self(reinterpret_cast<std::uintptr_t>(winner))) return kIntercepted;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(winner), &info) && info.dli_fname && *info.dli_fname)
    return info.dli_fname;
  return "the executable";
}

// Whether module `owner` (a file name dladdr gave) is a copy of heapledger: the first
// heapledger_version found is its (two copies preloaded, from two builds or an install and a
// build: the second said "the program's malloc is .../libheapledger.so's, not heapledger's").
bool another_heapledger(const char* owner) {
  Dl_info info;
  void* version = dlsym(RTLD_DEFAULT, "heapledger_version");
  return version && !in_self(reinterpret_cast<std::uintptr_t>(version)) && dladdr(version, &info) &&
         info.dli_fname && std::strcmp(info.dli_fname, owner) == 0;
}

// This library's file name, as the loader has it.
const char* self_path() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&self_path), &info) && info.dli_fname && *info.dli_fname)
    return info.dli_fname;
  return "libheapledger.so";
}

// Whether this library comes after the C library in the order symbols are looked up in: linked
// into a shared library instead of the executable (the loader puts the executable's own
// libraries, libc among them, first), or loaded with dlopen. Its malloc is then nobody's, and
// "the program's malloc is libc's" (a user trial, for a CMake project that linked heapledger
// into its core library) read as if the program brought an allocator of its own.
bool loaded_after_the_c_library() {
  struct Search {
    std::uintptr_t self;
    int at = 0, self_at = -1, libc_at = -1;
  } search{reinterpret_cast<std::uintptr_t>(&loaded_after_the_c_library)};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        const char* slash = std::strrchr(info->dlpi_name, '/');
        const char* base = slash ? slash + 1 : info->dlpi_name;
        if (s->libc_at < 0 && std::strncmp(base, "libc.so", 7) == 0) s->libc_at = s->at;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && s->self >= start && s->self < start + ph.p_memsz)
            s->self_at = s->at;
        }
        ++s->at;
        return 0;
      },
      &search);
  return search.libc_at >= 0 && search.self_at > search.libc_at;
}

// The words the program started with, NUL-terminated, as /proc/self/cmdline has them; without
// /proc (a chroot or container with none mounted), as glibc handed them to our constructor.
void remember_cmdline(int argc, char** argv) {
  std::size_t cap = 4096, used = 0;
  auto* buf = static_cast<char*>(os::map_internal(cap));
  const auto room = [&](std::size_t more) {  // up to ARG_MAX: a few times
    while (buf && used + more > cap) {
      auto* bigger = static_cast<char*>(os::map_internal(cap * 4));
      if (bigger) std::memcpy(bigger, buf, used);
      os::unmap_internal(buf, cap);
      buf = bigger, cap *= 4;
    }
    return buf != nullptr;
  };
  if (const int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC); fd >= 0) {
    for (ssize_t n; room(1) && (n = read(fd, buf + used, cap - used)) > 0;)
      used += static_cast<std::size_t>(n);
    close(fd);
  } else {
    for (int i = 0; argv && i < argc && argv[i]; ++i) {
      const std::size_t size = std::strlen(argv[i]) + 1;
      if (!room(size)) break;
      std::memcpy(buf + used, argv[i], size);
      used += size;
    }
  }
  if (!buf) return;
  g_state.cmdline = buf;
  g_state.cmdline_len = used;
}

// Why this process is not tracked, said where its report would have gone: stderr by default,
// nowhere with log=none, and with log=FILE in FILE (%p and %% as in report paths). On stderr
// whatever the log, cargo kept rustc's line as compiler output and showed it at every later build
// (a user trial's). One short line, written in place: through a symlink to its target, into a
// device or FIFO as it is (a FIFO nobody reads counts as unwritable), through the program's
// stdout or stderr when the file is one of them (`>> app.log 2>&1`), over an old report
// otherwise. The report writer's temporary file and rename would replace a symlink, a FIFO
// or /dev/null with a regular file, and it lives in the reporter module, which a program with a
// malloc of its own must not load (see start()).
__attribute__((format(printf, 1, 2))) void notice_untracked(const char* format, ...) {
  const char* log = g_state.options.log;
  if (!std::strcmp(log, "none")) return;
  OwnLine line;
  va_list args;
  va_start(args, format);
  const std::size_t length = format_line(line, format, args);
  va_end(args);
  if (!length) return;
  if (!std::strcmp(log, "stderr")) return stderr_line("%s", line);
  char path[kMaxPath];
  std::size_t used = 0;
  bool fits = true;
  for (const char* c = log; *c && fits; ++c) {
    char pid[16] = "%";
    if (c[0] == '%' && c[1] == 'p') std::snprintf(pid, sizeof pid, "%d", getpid());
    const bool escape = c[0] == '%' && (c[1] == 'p' || c[1] == '%');
    const char* piece = escape ? pid : c;
    const std::size_t length = escape ? std::strlen(pid) : 1;
    fits = used + length < sizeof path;
    if (fits) std::memcpy(path + used, piece, length), used += length;
    c += escape;
  }
  path[used] = 0;
  const int fd =
      fits ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644)
           : -1;
  bool written = false;
  if (fd >= 0) {
    struct stat st, out, err;
    const auto same = [&st](int other, struct stat* o) {
      return fstat(other, o) == 0 && o->st_dev == st.st_dev && o->st_ino == st.st_ino;
    };
    // The program's own stdout or stderr: through that descriptor, at its offset (written at the
    // file's end through a description of our own, the program's next line wrote over it).
    int to = fd;
    const bool known = fstat(fd, &st) == 0;
    if (known)
      to = same(STDOUT_FILENO, &out)   ? STDOUT_FILENO
           : same(STDERR_FILENO, &err) ? STDERR_FILENO
                                       : fd;
    if (known && to == fd && S_ISREG(st.st_mode)) (void)ftruncate(fd, 0);
    written = write_all_held(to, line, length);
    close(fd);
  }
  if (!written) stderr_line("%s", line);  // an unwritable log: on stderr, as a report would be
}

// The pools could not have their region: the program runs on, on another allocator.
void say_no_pools() {
  const std::size_t left = os::address_space_left();
  char limit[96] = "";
  if (left != SIZE_MAX && left != os::kSpaceUnknown)
    std::snprintf(limit, sizeof limit, " under the process's limit (ulimit -v: %zu MiB left)",
                  left >> 20);
  notice_untracked(
      "heapledger: no address space for heapledger's pools%s: the program runs on %s, untracked\n",
      limit, system_heap::on() ? "the C library's allocator" : "a mapping per block");
}

void warn(const char* line) {
  if (const ReporterApi* r = reporter())
    r->warn(line);
  else
    stderr_line("heapledger: warning: %s\n", line);
}

void say(const char* line) {
  if (const ReporterApi* r = reporter())
    r->say(line);
  else
    stderr_line("heapledger: %s\n", line);
}

}  // namespace

std::uint64_t now_us() { return (monotonic_ns() - origin_ns()) / 1000; }

void tl_busy_forever() { tl_thread.busy = true; }
bool in_tracker() { return tl_thread.busy; }

const ReporterApi* reporter() {
  static const ReporterApi* api = nullptr;
  static bool tried = false;
  SpinGuard guard(g_reporter_lock);
  if (!tried) {
    tried = true;
    BusyScope busy;
    api = static_cast<const ReporterApi*>(load_module(kReporterFile, kReporterEntry, false));
    if (api) api->set_streams(&g_state.stdout_identity, &g_state.stderr_identity, os::sandboxed);
  }
  return api;
}

CountTotals count_totals(bool threads_stopped) {
  CountTotals t;
  auto add = [&](const ThreadCounts& c) {
    t.allocations += c.allocations.load(std::memory_order_relaxed);
    t.frees += c.frees.load(std::memory_order_relaxed);
    t.bytes_allocated += c.bytes_allocated.load(std::memory_order_relaxed);
  };
  for (ThreadCounts* c = g_state.counters.threads.load(std::memory_order_acquire); c; c = c->next) add(*c);
  SpinLock& lock = g_state.counters.orphan_lock;
  if (threads_stopped) {
    // A stopped thread may hold the lock for good: then the counts are read as they are (each
    // word whole; the three may be one change apart).
    const bool locked = lock.try_lock();
    add(g_state.counters.orphan);
    if (locked) lock.unlock();
    return t;
  }
  SpinGuard guard(lock);
  add(g_state.counters.orphan);
  return t;
}

// The callers of the blocks allocated before start(): the constructors of the libraries the
// loader initializes before ours (with LD_PRELOAD, every library the program links: libstdc++'s
// 72,704-byte exception arena, a plugin's tables) run before there is an unwinder to take a
// stack, and such a block showed "(no stack recorded)", leaked or not (a user trial). The return
// address of the allocation function is at hand without one: start() gives each block still live
// that one frame as its stack. The first kMax blocks; a block freed (or moved by realloc) before
// start() leaves the list, so an address reused later is not taken for it.
class EarlyCallers {
 public:
  static constexpr std::uint32_t kMax = 1024;
  void note(std::uintptr_t addr, std::uintptr_t ra) {
    if (ra == 0 || !open_.load(std::memory_order_relaxed)) return;
    const std::uint32_t i = used_.fetch_add(1, std::memory_order_relaxed);
    if (i >= kMax) return;
    entries_[i].ra.store(ra, std::memory_order_relaxed);
    entries_[i].addr.store(addr, std::memory_order_release);
  }
  void forget(std::uintptr_t addr) {
    if (!open_.load(std::memory_order_relaxed)) return;
    const std::uint32_t n = std::min(used_.load(std::memory_order_relaxed), kMax);
    for (std::uint32_t i = n; i-- > 0;) {  // the latest first: an address can come back
      std::uintptr_t expected = addr;
      if (entries_[i].addr.load(std::memory_order_relaxed) == addr &&
          entries_[i].addr.compare_exchange_strong(expected, 0, std::memory_order_relaxed))
        return;
    }
  }
  // Ends the list; f(addr, ra) for each block still on it.
  template <class F>
  void close(F&& f) {
    open_.store(false, std::memory_order_relaxed);
    const std::uint32_t n = std::min(used_.load(std::memory_order_relaxed), kMax);
    for (std::uint32_t i = 0; i < n; ++i)
      if (const std::uintptr_t addr = entries_[i].addr.load(std::memory_order_acquire))
        f(addr, entries_[i].ra.load(std::memory_order_relaxed));
  }

 private:
  struct Entry {
    std::atomic<std::uintptr_t> addr{0}, ra{0};
  };
  std::atomic<bool> open_{true};
  std::atomic<std::uint32_t> used_{0};
  Entry entries_[kMax];
};
constinit EarlyCallers g_early_callers;

// HEAPLEDGER_OPTIONS as the process started with it, read from the environment on the stack
// (argv, a null, then envp, above the stack pointer the dynamic linker started with): the first
// allocations come before the C library has set up environ.
const char* initial_options() {
  auto** at = static_cast<char**>(__libc_stack_end);
  if (!at) return nullptr;
  for (++at; *at; ++at) {  // past argc and argv (to its null: argc is not trusted)
  }
  constexpr char kName[] = "HEAPLEDGER_OPTIONS=";
  for (++at; *at; ++at)
    if (!std::strncmp(*at, kName, sizeof kName - 1)) return *at + sizeof kName - 1;
  return nullptr;
}

// Whether the options will say track=0, decided at the first allocation (before start() parses
// them): then nothing is recorded from the start. The blocks allocated before the constructor
// were recorded all the same, which mapped the ledger's tables in every process that runs the
// pools only (a sed under track=0: 192 -> 165 page faults, tests/bench/per_process.py).
enum : int { kEarlyUnknown, kEarlyTracked, kEarlyUntracked };
std::atomic<int> g_early{kEarlyUnknown};

HL_NOINLINE bool untracked_from_the_start() {
  int early = g_early.load(std::memory_order_acquire);
  if (early == kEarlyUnknown) {
    early = tracking_asked(initial_options()) ? kEarlyTracked : kEarlyUntracked;
    g_early.store(early, std::memory_order_release);
  }
  return early == kEarlyUntracked;
}

// Blocks allocated before start() (no unwinder yet) or by the tracker itself: recorded without
// a stack; the tracker's own are marked internal and left out of every count.
HL_NOINLINE void record_quietly(void* p, std::size_t size, AllocKind kind, std::uintptr_t ra) {
  // Once decided tracked (at the latest by start()), one load.
  if (HL_UNLIKELY(g_early.load(std::memory_order_relaxed) != kEarlyTracked) &&
      untracked_from_the_start()) {
    g_active.store(false, std::memory_order_release);  // the pools only, from here on
    return;
  }
  bool internal = tl_thread.busy;
  if (size > Record::kMaxSize) size = Record::kMaxSize;
  Record r(size, internal ? AllocKind::kInternal : kind, internal ? 0 : thread_index(), 0,
           StackTable::kEmptyStack);
  if (!g_state.ledger.insert(reinterpret_cast<std::uintptr_t>(p), r) || internal) return;
  g_early_callers.note(reinterpret_cast<std::uintptr_t>(p), ra);
  count(my_counts(), 1, 0, size);
  // No site yet: give_early_blocks_their_callers() gives the block to one at start.
  g_state.counters.live.change(nullptr, LiveTotals::kNoSite, static_cast<std::int64_t>(size), 1,
                               peak_so_far());
}

void on_alloc(void* p, std::size_t size, AllocKind kind, Caller caller) {
  if (HL_UNLIKELY(tl_thread.busy || !g_state.recording))
    return record_quietly(p, size, kind, caller.ra);
  BusyScope busy;
  g_state.ledger.prefetch(reinterpret_cast<std::uintptr_t>(p));  // loads while the stack is taken
  std::uint32_t stack = current_stack(g_state.options.max_frames, caller);
  tl_thread.freeing = false;
  if (HL_UNLIKELY(tl_thread.pending_count != 0)) settle_pending();  // first: the peak stays exact
  std::uint64_t t = event_us();
  if (size > Record::kMaxSize) size = Record::kMaxSize;
  if (!g_state.ledger.insert(reinterpret_cast<std::uintptr_t>(p),
                             Record(size, kind, thread_index(), t, stack)))
    return;  // out of memory for the ledger: the block stays untracked
  ThreadCounts& tc = my_counts();
  count(tc, 1, 0, size);
  const std::int64_t peak = peak_so_far();
  // The site's share too (adjust_site, unless the thread's slot keeps it): before the peak.
  const LiveTotals::Change live =
      g_state.counters.live.change(slot_of(tc), stack, static_cast<std::int64_t>(size), 1, peak);
  if (live.exact && live.live > peak) note_peak(live.live, t);
  note_timeline(live.live, static_cast<std::int64_t>(size), live.exact, t);
}

namespace {

// program_free: the program's own free (the timeline gets a point if one is due), not the
// tracker's bookkeeping.
void count_free(const Record& r, bool program_free) {
  if (r.kind() == AllocKind::kInternal) return;
  ThreadCounts& tc = my_counts();
  count(tc, 0, 1, 0);
  auto size = static_cast<std::int64_t>(r.size());
  const LiveTotals::Change live =
      g_state.counters.live.change(slot_of(tc), r.stack(), -size, -1, peak_so_far());
  if (program_free) note_timeline_on_free(live.live, -size, live.exact);
}

}  // namespace

// The block leaves the ledger without any check (the tracker's own bookkeeping); false if it was
// not there. Runs even inside the tracker: a block must leave the ledger before its memory can
// be reused.
bool on_free(void* p) {
  Record r;
  if (!g_state.ledger.erase(reinterpret_cast<std::uintptr_t>(p), &r)) return false;
  count_free(r, !tl_thread.busy);
  if (HL_UNLIKELY(!g_state.recording)) g_early_callers.forget(reinterpret_cast<std::uintptr_t>(p));
  return true;
}

namespace {

// Free stacks are taken on every free (for the quarantine) but shown only for double frees:
// 16 frames say where, at a fraction of the unwinding (memcheck shows 12 by default).
constexpr int kFreeStackFrames = 16;

// released: for a mismatched free, or an invalid free into a live block, the family of the call
// that released it. block: for an invalid free into a live block, where that block starts (rel
// holds its record).
HL_NOINLINE void report_misuse(Errors::Kind kind, std::uintptr_t addr, std::uint32_t stack,
                               const Release* rel, const char* detail,
                               AllocKind released = AllocKind::kInternal, std::uintptr_t block = 0,
                               const char* module = nullptr, std::size_t released_size = 0) {
  Errors& e = g_state.errors;
  e.total.fetch_add(1, std::memory_order_relaxed);
  Errors::Entry entry{kind, false, false, addr, stack, 0, 0, detail};
  entry.module = module;
  // Which thread: two threads freeing one block gave two reports that said nothing of it (a user
  // trial's; memcheck says "Thread N"). System calls of our own: no errno, no stale registers.
  entry.tid = static_cast<pid_t>(os::kernel_call(SYS_gettid));
  if (os::kernel_call(SYS_prctl, PR_GET_NAME, reinterpret_cast<long>(entry.thread_name)) != 0)
    entry.thread_name[0] = '\0';
  if ((kind == Errors::kMismatchedFree || block != 0) && rel && released != AllocKind::kInternal)
    entry.allocated = rel->record.kind(), entry.released = released;
  if (rel && rel->verdict == Release::kLive) entry.has_alloc = true, entry.alloc_stack = rel->record.stack();
  if (block != 0) entry.block = block, entry.block_size = rel->record.size();
  entry.released_size = released_size;
  if (rel && rel->verdict == Release::kDoubleFree) {
    entry.has_alloc = entry.has_free = true;
    entry.alloc_stack = rel->freed.alloc_stack;
    entry.free_stack = rel->freed.free_stack;
    // The thread of the first free, where its 16 bits name one number (under 65,536 threads):
    // two threads freeing one block, both stacks the same, could not be told apart (a trial's).
    const std::uint32_t first = rel->freed.free_thread;
    if (first != 0 && g_state.next_thread.load(std::memory_order_relaxed) <= 0xFFFF &&
        !g_state.threads.find(first, &entry.free_tid, entry.free_thread_name))
      entry.free_tid = 0;
  }
  {
    SpinGuard guard(e.lock);
    if (e.kept < Errors::kMax) e.entries[e.kept++] = entry;
  }
  if (!std::strcmp(g_state.options.on_error, "abort")) abort_on_error(entry);
}

// The live block that starts at start (0: none), its record in out.
std::uintptr_t live_block_at(std::uintptr_t start, Release* out) {
  if (start == 0 || !g_state.ledger.find(start, &out->record) ||
      out->record.kind() == AllocKind::kInternal)
    return 0;
  out->verdict = Release::kLive;
  return start;
}

// For an invalid free: the live block whose slot addr falls in, else the nearest live block that
// ends at most kNearBytes before addr or starts at most kNearBytes after it (a free just outside
// a block, named as memcheck names it); 0 if none. Probes the pools slot by slot.
constexpr std::uintptr_t kNearBytes = 64;

std::uintptr_t live_block_around(std::uintptr_t addr, Release* out) {
  if (!g_state.pool.block_containing) return 0;
  auto slot_of = [](std::uintptr_t a) {
    return g_state.pool.block_containing(reinterpret_cast<void*>(a));
  };
  const std::uintptr_t slot = slot_of(addr);
  if (slot == addr) return 0;
  if (const std::uintptr_t block = live_block_at(slot, out)) return block;
  // The first other slot on each side (16 bytes is the smallest slot; 8 steps finer than that).
  std::uintptr_t below = 0, above = 0;
  for (std::uintptr_t d = 8; d <= kNearBytes && !below; d += 8)
    if (const std::uintptr_t s = slot_of(addr - d); s != 0 && s != slot && s < addr) below = s;
  for (std::uintptr_t d = 8; d <= kNearBytes && !above; d += 8)
    if (const std::uintptr_t s = slot_of(addr + d); s != 0 && s != slot && s > addr) above = s;
  Release before, after;
  below = live_block_at(below, &before);
  above = live_block_at(above, &after);
  const std::uintptr_t gap_below =
      below ? addr - (below + before.record.size()) : ~std::uintptr_t{0};
  const std::uintptr_t gap_above = above ? above - addr : ~std::uintptr_t{0};
  if (below && gap_below <= kNearBytes && gap_below <= gap_above) return *out = before, below;
  if (above && gap_above <= kNearBytes) return *out = after, above;
  return 0;
}

// Which entry point families may release a block allocated by which. Where the program has an
// operator new or delete of its own, any may meet any: its new may call malloc, its delete free,
// its new[] new (as the standard's own does), which the entry points cannot tell apart.
bool families_match(AllocKind allocated, AllocKind released) {
  if (allocated == AllocKind::kInternal || g_state.foreign_operators) return true;
  if (released == AllocKind::kMalloc)
    return allocated == AllocKind::kMalloc || allocated == AllocKind::kAligned;
  return allocated == released;
}

}  // namespace

static const char* mismatch(const Record& r, AllocKind op, std::size_t size, std::size_t align,
                     std::uintptr_t addr) {
  if (!families_match(r.kind(), op)) return kWrongFamily;
  if (size != kNoSize && r.kind() != AllocKind::kInternal && size != r.size())
    return kSizedDeleteDiffers;
  if (align != 0 && addr % align != 0) return "aligned delete with a different alignment";
  return nullptr;
}

namespace {

void report_bad_free(const PendingFree& e, Release* found);

// Into the quarantine, with the record of this free: a small block's in the ledger slot it was
// just taken from (hot now, where the block's own first bytes are cold for every block the
// program frees without reading it, and the program could write over them after the free).
bool hold_back(std::uintptr_t addr, const Release& rel, std::uint32_t free_stack) {
  if (rel.record.kind() == AllocKind::kInternal) return false;
  const FreedBlock freed{rel.record.stack(), free_stack, thread_index() & 0xFFFF};
  const bool aside = rel.slot != nullptr;  // else a small block carries it (no table)
  Quarantine::Local& local = tl_thread.quarantine;
  // Its blocks come back to it once its exit destructor will close the inbox.
  if (HL_UNLIKELY(!local.inbox) && !local.closed && tl_thread.counts &&
      tl_thread.counts != &g_state.counters.orphan && !single_threaded() &&
      (tl_thread.exit_hooked || hook_thread_exit()))
    g_state.quarantine.attach(local, &tl_thread.counts->inbox);
  if (!g_state.quarantine.hold(local, addr, rel.record.size(), freed, aside)) return false;
  if (aside) {
    std::uintptr_t record[2];
    Quarantine::record_of(addr, freed, record);
    Ledger::keep_freed(rel, record);
  }
  return true;
}

// What a free of the block at e.addr finds, reports and does (free_stack: 0 if none was taken).
void settle_free(const PendingFree& e, FreeOutcome* out) {
  const std::uintptr_t addr = e.addr;
  Release rel;
  g_state.ledger.release(addr, &rel);
  if (rel.verdict == Release::kSkipped) return;  // kRelease: the pool decides (it may leak it)
  if (rel.verdict == Release::kLive && rel.record.kind() == AllocKind::kInternal) {
    // One of ours (the tracker's, or the loader's while it loaded our modules): the program's
    // free of it is refused, not reported, and the record goes back. Freed into the pools, it
    // was handed out again while still in use: a bogus pointer that hit one corrupted our
    // tables (a review). The loader may free one it made for us (a thread vector it grows):
    // that block is then kept, a few bytes.
    g_state.ledger.insert(addr, rel.record);
    out->action = FreeOutcome::kReject;
    return;
  }
  if (rel.verdict == Release::kLive) {
    count_free(rel.record, true);
    // The block is the one freed: its address and size in the report (a sized delete's detail
    // gives both sizes).
    if (const char* why = mismatch(rel.record, e.kind, e.size, e.align, addr))
      report_misuse(Errors::kMismatchedFree, addr, e.free_stack ? e.free_stack : current_stack(),
                    &rel, why, e.kind, addr, nullptr, e.size == kNoSize ? 0 : e.size);
    out->action = hold_back(addr, rel, e.free_stack) ? FreeOutcome::kKeep : FreeOutcome::kRelease;
    return;
  }
  out->action = FreeOutcome::kReject;
  report_bad_free(e, &rel);
}

// What a free of no live block's start is called, by a free and by a realloc: a realloc's says
// so (it was reported as the free it is, "freed twice", and where one line both frees and
// reallocs the report could not tell which call it was: a user trial's). near: the reporter
// names where in which block the pointer lies, then says kPassedToRealloc if given it.
struct BadFreeWords {
  const char* twice;
  const char* twice_forgotten;
  const char* near;
  const char* on_stack;
  const char* not_a_block;
};
constexpr BadFreeWords kFreeWords{"freed twice", "freed twice (first free no longer remembered)",
                                  "near a heap block", "on this thread's stack, not a heap block",
                                  "not the start of a heap block"};
constexpr BadFreeWords kReallocWords{
    "freed, then passed to realloc",
    "freed, then passed to realloc (the free no longer remembered)", kPassedToRealloc,
    "passed to realloc: on this thread's stack, not a heap block",
    "passed to realloc: not the start of a heap block"};

// A free of no live block's start: a double free, or an invalid one.
void report_bad_free(const PendingFree& e, Release* found) {
  const std::uintptr_t addr = e.addr;
  Release& rel = *found;
  std::uint32_t stack = e.free_stack ? e.free_stack : current_stack();
  const BadFreeWords& said = tl_thread.realloc_release ? kReallocWords : kFreeWords;
  if (g_state.quarantine.recall(addr, &rel.freed)) {
    rel.verdict = Release::kDoubleFree;
    report_misuse(Errors::kDoubleFree, addr, stack, &rel, said.twice);
  } else if (g_state.pool.was_block && g_state.pool.was_block(reinterpret_cast<void*>(addr))) {
    report_misuse(Errors::kDoubleFree, addr, stack, nullptr, said.twice_forgotten);
  } else if (Release inside; const std::uintptr_t block = live_block_around(addr, &inside)) {
    report_misuse(Errors::kInvalidFree, addr, stack, &inside, said.near, e.kind, block);
  } else if (fast_unwind::on_own_stack(addr)) {
    report_misuse(Errors::kInvalidFree, addr, stack, nullptr, said.on_stack);
  } else if (const std::uint16_t module = g_state.modules.find(addr);
             module != ModuleMap::kUnknown) {
    // a global or a string literal: the reporter names the module
    report_misuse(Errors::kInvalidFree, addr, stack, nullptr, said.not_a_block,
                  AllocKind::kInternal, 0, g_state.modules.get(module).path);
  } else {
    report_misuse(Errors::kInvalidFree, addr, stack, nullptr, said.not_a_block);
  }
}

// A free settled after the call that made it: the tracker holds the block meanwhile, so what
// the pools would have done with it is done here.
void settle_later(const PendingFree& e) {
  FreeOutcome out;
  settle_free(e, &out);
  if (out.action == FreeOutcome::kRelease) g_state.pool.quarantine.release(reinterpret_cast<void*>(e.addr));
}

// Pending frees. A free needs its block's ledger record first, and that record is as cold as the
// block's last use: the prefetch at the free's start hides only part of the miss behind the free
// stack. So in a run of frees (a container torn down: no allocation between them), a small
// block's free, once its stack is taken, waits in the thread's ring until 8 more frees came or
// the thread allocates (whichever is first), and is settled then, its record loaded by that
// time; the block is held meanwhile, as the quarantine holds it. The first free of a run is
// settled at once, so a program that alternates allocations and frees sees no difference.
//
// Only while the process has a single thread: until a free is settled its block's record still
// says live, and another thread could free it again unseen (or be handed it back out of the
// quarantine, and lose it to the first free's settling), or make the process-wide peak with it.
// The thread settles its frees when it next allocates, frees without waiting (so frees settle in
// order), runs out of memory, or exits the process (a thread that ends while it is the only one
// ends the process). glibc's pthread_create marks the process multi-threaded and then allocates
// the new thread's TLS vector before the thread runs: that allocation settles them, and nothing
// waits from then on. realloc, and a signal handler
// that interrupted the tracker, ask freed_and_pending() before they take a block for live. What
// lags: the live totals and the timeline by those few frees (never the peak: an allocation
// settles first). Not taken with on_error=abort, which stops at the misuse, nor without the
// quarantine (no free stack for the prefetch to hide behind).
// (The fields are stored one by one: a whole PendingFree built on the stack and copied in
// stalled on store forwarding, 2% of python3-malloc's time.)
HL_ALWAYS_INLINE bool defer_free(std::uintptr_t addr, std::size_t size, std::size_t align,
                                 std::uint32_t free_stack, AllocKind kind) {
  ThreadState& t = tl_thread;
  if (!g_state.defer_frees || free_stack == 0 || !single_threaded()) return false;
  t.pending_changing = true;
  const std::uint32_t n = t.pending_count;
  PendingFree& slot = t.pending[(t.pending_head + n) % ThreadState::kMaxPending];  // head, if full
  PendingFree oldest;
  const bool full = n == ThreadState::kMaxPending;
  if (full) {
    oldest = slot;
    t.pending_head = (t.pending_head + 1) % ThreadState::kMaxPending;
  } else {
    t.pending_count = n + 1;
  }
  slot.addr = addr;
  slot.size = size;
  slot.align = align;
  slot.free_stack = free_stack;
  slot.kind = kind;
  t.pending_changing = false;
  if (full) settle_later(oldest);
  return true;
}

// Settles this thread's pending frees, oldest first; returns how many.
HL_NOINLINE std::uint32_t settle_pending() {
  BusyScope busy;
  ThreadState& t = tl_thread;
  std::uint32_t settled = 0;
  while (t.pending_count != 0) {
    t.pending_changing = true;
    PendingFree& slot = t.pending[t.pending_head];
    const PendingFree e = slot;
    slot.addr = 0;
    t.pending_head = (t.pending_head + 1) % ThreadState::kMaxPending;
    --t.pending_count;
    t.pending_changing = false;
    settle_later(e);
    ++settled;
  }
  return settled;
}

// Whether the live block at addr is the tracker's own. A pending free of the same address is
// then a double free waiting to be settled: the pools had the block free and gave it to the
// tracker while that free's stack was taken (libunwind allocates; libdw did, to learn a rule).
// Refused as a pending free's block, it stayed the tracker's, and the double free, settled later,
// found it live and went unreported (a user trial's single-threaded double free of a 200-byte
// block).
bool own_block(std::uintptr_t addr) {
  Record r;
  return g_state.ledger.find(addr, &r) && r.kind() == AllocKind::kInternal;
}

// Whether this thread's free of addr is still pending: a signal handler that interrupted the
// tracker must not take the block for live. (While the ring changes it cannot tell: no.)
bool freed_and_pending(std::uintptr_t addr) {
  const ThreadState& t = tl_thread;
  if (t.pending_count == 0 || t.pending_changing) return false;
  for (std::uint32_t i = 0; i < t.pending_count; ++i)
    if (t.pending[(t.pending_head + i) % ThreadState::kMaxPending].addr == addr) return true;
  return false;
}

}  // namespace

void on_release(void* p, AllocKind kind, std::size_t size, std::size_t align, FreeOutcome* out,
                Caller caller) {
  auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (HL_UNLIKELY(tl_thread.busy || !g_state.recording)) {  // no stacks here: just keep books
    // Not in the ledger: held by the quarantine (which gives it back, once), freed already, or a
    // block the ledger never had room for; or in the ledger still, but freed and pending. The
    // pools check nothing, so it is left alone: a double free here (a constructor that runs
    // before ours, a signal handler inside the tracker) must not put a block in them twice. At
    // worst an unrecorded block is leaked.
    if ((freed_and_pending(addr) && !own_block(addr)) || !on_free(p))
      out->action = FreeOutcome::kReject;
    return;
  }
  BusyScope busy;
  const bool small = g_state.ledger.prefetch(addr);  // loads while the stack is taken
  std::uint32_t free_stack =
      g_state.options.quarantine_mb > 0 ? current_stack(std::min(g_state.options.max_frames, kFreeStackFrames), caller) : 0;
  const bool in_a_run = tl_thread.freeing;
  tl_thread.freeing = true;
  if (in_a_run && small && !tl_thread.realloc_release &&
      defer_free(addr, size, align, free_stack, kind)) {
    out->action = FreeOutcome::kKeep;
    return;
  }
  if (HL_UNLIKELY(tl_thread.pending_count != 0)) settle_pending();  // in order
  settle_free(PendingFree{addr, size, align, free_stack, kind}, out);
}

bool release_held() {
  if (tl_thread.busy || !g_state.recording || lock_held_by_this_thread()) return false;
  BusyScope busy;
  const bool settled = settle_pending() != 0;  // a block the quarantine could not hold is free now
  return g_state.quarantine.drain(tl_thread.quarantine) > 0 || settled;
}

namespace {

// Where the quarantine finds the records of the blocks it holds: a small block's in its ledger
// slot (settle_free keeps it there), a large block's with the pools, and a small block's in the
// block itself when the ledger has no table of slots.
bool read_freed_record(const void* p, std::uintptr_t out[2]) {
  if (g_state.ledger.records_by_address() && pool::small_class_of(p) >= 0)
    return g_state.ledger.find_freed(reinterpret_cast<std::uintptr_t>(p), out);
  return g_state.pool.quarantine.read_start(p, out);
}

}  // namespace

void set_pool_probes(const PoolProbes& probes) { g_state.pool = probes; }

// Also from a signal handler that interrupted the tracker (exit() there), unless the ring itself
// was being changed or a lock is held: the interrupted call never resumes.
void settle_own_frees() {
  if (tl_thread.pending_count != 0 && !tl_thread.pending_changing && !lock_held_by_this_thread())
    settle_pending();
}

bool lock_held_by_this_thread() {
  const SpinLock* locks[] = {&g_reporter_lock,
                             &g_state.timeline.lock,
                             &g_state.errors.lock,
                             &g_state.counters.orphan_lock,
                             &g_state.counters.spare_lock,
                             &g_state.dead_stacks.lock};
  if (g_state.counters.live.lock_held_by_this_thread()) return true;
  for (const SpinLock* l : locks)
    if (l->held_by_this_thread()) return true;
  return g_state.ledger.lock_held_by_this_thread() || g_state.modules.lock_held_by_this_thread() ||
         internal_alloc_lock_held() || os::internal_lock_held() ||
         g_state.quarantine.lock_held_by_this_thread() ||
         (g_state.pool.lock_held && g_state.pool.lock_held());
}

namespace {
// A block of operator new's passed to realloc.
void report_realloc_mismatch(std::uintptr_t addr, const Record& record) {
  BusyScope busy;
  Release rel;
  rel.verdict = Release::kLive;
  rel.record = record;
  report_misuse(Errors::kMismatchedFree, addr, current_stack(), &rel, kReallocOfWrongFamily,
                AllocKind::kMalloc);
}
}  // namespace

ReallocRelease::ReallocRelease() : was_(tl_thread.realloc_release) {
  tl_thread.realloc_release = true;
}
ReallocRelease::~ReallocRelease() { tl_thread.realloc_release = was_; }

bool take_for_realloc(void* p, Record* taken) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (!g_state.recording) g_early_callers.forget(addr);
  if (!g_state.ledger.erase(addr, taken)) {
    if (tl_thread.busy || !g_state.recording) return false;
    BusyScope busy;
    Release rel;
    ReallocRelease by_realloc;
    report_bad_free(PendingFree{addr, kNoSize, 0, 0, AllocKind::kMalloc}, &rel);
    return false;
  }
  if (tl_thread.busy || !g_state.recording || families_match(taken->kind(), AllocKind::kMalloc))
    return true;
  report_realloc_mismatch(addr, *taken);
  return true;
}

AllocKind realloc_release_kind(void* p) {
  Record r;
  if (tl_thread.busy || !g_state.recording ||
      !g_state.ledger.find(reinterpret_cast<std::uintptr_t>(p), &r) ||
      families_match(r.kind(), AllocKind::kMalloc))
    return AllocKind::kMalloc;
  report_realloc_mismatch(reinterpret_cast<std::uintptr_t>(p), r);
  return r.kind();
}

void realloc_done(const Record& taken) { count_free(taken, !tl_thread.busy); }

void put_back(void* p, const Record& taken) {
  // Out of memory for the ledger: the block stays untracked, and leaves the live totals.
  if (!g_state.ledger.insert(reinterpret_cast<std::uintptr_t>(p), taken)) count_free(taken, false);
}

void report_unwind_verification() {
  const Unwinding& u = g_state.unwinding;
  if (u.mode != Unwinding::kVerify) return;
  BusyScope busy;  // loading the reporter to say it allocates: not the program's blocks
  const unsigned long long differed = u.differed.load();
  char first[48] = "";
  if (differed != 0)
    std::snprintf(first, sizeof first, " (first at %#llx)",
                  static_cast<unsigned long long>(u.first_difference.load()));
  char line[256];
  std::snprintf(line, sizeof line,
                "unwind=verify: %llu stacks taken by CFI rules, %llu differed from libunwind%s; "
                "%llu taken by libunwind",
                static_cast<unsigned long long>(u.stacks.load()), differed, first,
                static_cast<unsigned long long>(u.fallbacks.load()));
  if (differed != 0)
    warn(line);
  else
    say(line);  // the check passed: nothing to warn of
}

void note_unload() {
  g_state.unload_epoch.fetch_add(1, std::memory_order_relaxed);
  if (const RuntimeApi* runtime = g_state.runtime) runtime->forget_unloaded();
}

bool is_live(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (HL_UNLIKELY(freed_and_pending(addr))) return false;  // its record says live until settled
  return g_state.ledger.find(addr, nullptr);
}

bool recorded_size(const void* p, std::size_t* size) {
  Record r;
  if (!g_state.ledger.find(reinterpret_cast<std::uintptr_t>(p), &r)) return false;
  *size = r.size();
  return true;
}

namespace {
// Whether st is the file /dev/null names (not merely a null device: one made elsewhere, in a
// chroot's /dev say, is reopened by its own name; a review's).
bool is_dev_null(const struct stat& st) {
  struct stat null;
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) && stat("/dev/null", &null) == 0 &&
         null.st_dev == st.st_dev && null.st_ino == st.st_ino;
}

// The name a stream's file is reopened by (StreamIdentity::path). Where no name would reopen it,
// the one /proc gives it, made here: an anonymous pipe's and a socket's; and /dev/null is named
// as such. Asking /proc (readlink of /proc/self/fd/N) was the dearest step of the library's start:
// 26-40 us for the first stream on this VM, against 245 us for all the pools-only library added
// to /bin/true, and the short processes of a build or a shell pipeline have pipes there.
void name_stream(int fd, const struct stat& st, char* path, std::size_t size) {
  const auto ino = static_cast<unsigned long long>(st.st_ino);
  struct statfs fs;
  if (S_ISSOCK(st.st_mode)) {
    std::snprintf(path, size, "socket:[%llu]", ino);
  } else if (S_ISFIFO(st.st_mode) && fstatfs(fd, &fs) == 0 && fs.f_type == PIPEFS_MAGIC) {
    std::snprintf(path, size, "pipe:[%llu]", ino);  // a named pipe is reopened by its name
  } else if (is_dev_null(st)) {
    std::snprintf(path, size, "/dev/null");
  } else {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, path, size - 1);
    path[n > 0 ? n : 0] = 0;
  }
}
}  // namespace

// What fd (stdout or stderr) is as the process starts: a program started with it closed may open
// a file of its own there, which no report must go into.
void record_stream(int fd, StreamIdentity* id) {
  id->fd = -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    id->closed = errno == EBADF;
    return;
  }
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->known = true;
  id->regular = S_ISREG(st.st_mode);
  name_stream(fd, st, id->path, sizeof id->path);
}

// A copy of fd, the regular file id records, for when the program closes or replaces it
// (StreamIdentity::fd).
void keep_copy(int fd, StreamIdentity* id) {
  rlimit files;
  if (id->known && id->regular && getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur >= 64) {
    const auto at = static_cast<int>(std::min<rlim_t>(1000, files.rlim_cur / 2));
    id->fd = fcntl(fd, F_DUPFD_CLOEXEC, at);
  }
}

// Whether a report is to go where stdout goes: a name of fd 1, or the file stdout is open on.
bool report_goes_to_stdout(const Options& o, const StreamIdentity& out) {
  for (const char* path : {o.log, o.json}) {
    if (!std::strcmp(path, "/dev/stdout") || !std::strcmp(path, "/dev/fd/1") ||
        !std::strcmp(path, "/proc/self/fd/1"))
      return true;
    struct stat st;
    if (out.known && path[0] == '/' && stat(path, &st) == 0 && st.st_dev == out.dev &&
        st.st_ino == out.ino)
      return true;
  }
  return false;
}

void note_stderr_set() {
  // Not from a vforked child: it shares this process's memory, and its fd 2 is not this process's.
  if (g_state.pid != 0 && static_cast<std::uint32_t>(syscall(SYS_getpid)) != g_state.pid) return;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return;
  const std::uint64_t born = birth_ns(STDERR_FILENO);
  StreamIdentity& id = g_state.stderr_identity;
  id.set_ino.store(0, std::memory_order_relaxed);  // meanwhile no reader pairs the old inode with
  id.set_dev.store(st.st_dev, std::memory_order_release);  // the new device
  id.set_birth_ns.store(born, std::memory_order_release);
  id.set_ino.store(st.st_ino, std::memory_order_release);
}

// At start: each block allocated before it gets its caller as its stack (EarlyCallers); the
// others, none noted, belong to the empty stack's call site.
void give_early_blocks_their_callers() {
  std::int64_t bytes, blocks;
  g_state.counters.live.settle(&bytes, &blocks);
  g_early_callers.close([&](std::uintptr_t addr, std::uintptr_t ra) {
    Record r;
    if (in_self(ra) || !g_state.ledger.find(addr, &r) || r.stack() != StackTable::kEmptyStack ||
        r.kind() == AllocKind::kInternal)
      return;
    const std::uint32_t stack = g_state.stacks.intern(&ra, 1);
    Record taken;
    if (stack == StackTable::kEmptyStack || !g_state.ledger.erase(addr, &taken)) return;
    if (taken.first_word() != r.first_word() || taken.second_word() != r.second_word()) {
      // Another thread freed the block and got the address back since the find (a review's):
      // not the block noted. Put back as it was.
      if (!g_state.ledger.insert(addr, taken)) count_free(taken, false);
      return;
    }
    if (!g_state.ledger.insert(addr, Record(r.size(), r.kind(), r.thread(), r.time_us(), stack))) {
      count_free(r, false);  // out of memory for the ledger: untracked, as on_alloc leaves it
      return;
    }
    const auto size = static_cast<std::int64_t>(r.size());
    adjust_site(stack, size, 1);
    bytes -= size;
    --blocks;
  });
  adjust_site(StackTable::kEmptyStack, bytes, blocks);
}

void start(int argc, char** argv) {
  static std::atomic<bool> started{false};
  if (started.exchange(true)) return;
  BusyScope busy;
  origin_ns();
  g_state.start_pid = static_cast<std::uint32_t>(getpid());
  g_state.pid = g_state.start_pid;
  record_stream(STDOUT_FILENO, &g_state.stdout_identity);
  record_stream(STDERR_FILENO, &g_state.stderr_identity);
  g_stderr_at_start = &g_state.stderr_identity;
  g_sandboxed = os::sandboxed;
  parse_options(std::getenv("HEAPLEDGER_OPTIONS"), &g_state.options, &g_state.warnings);
  // Nothing was recorded before (the environment the process started with said track=0): a
  // constructor that set the options since cannot start tracking with blocks unrecorded.
  if (untracked_from_the_start()) g_state.options.track = false;
  {
    char cwd[kMaxPath];  // the system call: libc's getcwd may allocate
    const bool known = syscall(SYS_getcwd, cwd, sizeof cwd) > 0;
    anchor_paths(&g_state.options, known ? cwd : nullptr, &g_state.warnings);
  }
  drop_unreadable_suppressions(&g_state.options, &g_state.warnings);
  warn_reports_unwritten(g_state.options, &g_state.warnings);
  // Written here, not through the reporter module's logger: loading it while the program runs
  // left its own freed blocks' addresses in the blocks it keeps (its logger's), which the leak
  // scan follows as heapledger's; the program got those blocks next, and what it lost of them
  // came out "still reachable" whenever an option was warned about (a user trial's).
  for (int i = 0; i < g_state.warnings.count; ++i)
    stderr_line("heapledger: warning: %s\n", g_state.warnings.lines[i]);
  keep_copy(STDERR_FILENO, &g_state.stderr_identity);
  if (report_goes_to_stdout(g_state.options, g_state.stdout_identity))
    keep_copy(STDOUT_FILENO, &g_state.stdout_identity);
  // Its new then hands out malloc's blocks, which our delete gets, or its delete hands ours to
  // free, or its new[] forwards to new: every delete of such a program was reported as a
  // mismatched free (109 in a user trial's program that replaced only operator new; memcheck
  // reports none).
  g_state.foreign_operators = program_operators::take();
  if (!pool::ready()) {  // see shim/system_heap.h
    if (g_state.options.track) say_no_pools();  // with track=0 nothing was to be lost
    g_active.store(false, std::memory_order_release);
    return;
  }
  system_heap::resolve_options();
  if (g_state.options.track)
    g_state.runtime =
        static_cast<const RuntimeApi*>(load_module(kRuntimeFile, kRuntimeEntry, true));
  else  // now, busy: finding the C library's allocator allocates (dlopen), not the program
    pool::spill_to_system();
  if (!g_state.runtime) {
    if (g_state.options.track) notice_untracked("heapledger: tracking disabled\n");
    g_active.store(false, std::memory_order_release);  // pools only from here on
    return;
  }
  g_state.modules.refresh();
  find_self();
  remember_cmdline(argc, argv);
  // Then nothing the program allocates reaches us, and the reporter loaded at exit could find
  // its std::string code bound to another copy of libstdc++ that frees through that malloc
  // (rustc, whose libLLVM carries one: a crash at exit, after a report of no allocations).
  if (const char* owner = foreign_malloc()) {
    if (owner == kIntercepted)
      notice_untracked(
          "heapledger: tracking disabled: calls to malloc do not reach heapledger's (a tool "
          "that replaces malloc runs the program, such as valgrind)\n");
    else if (loaded_after_the_c_library())
      notice_untracked(
          "heapledger: tracking disabled: loaded after the C library (linked into a shared "
          "library, or loaded with dlopen), so the program's malloc is not heapledger's: "
          "link heapledger into the executable, or preload it (LD_PRELOAD)\n");
    else if (another_heapledger(owner))
      notice_untracked(
          "heapledger: %s stays out: another copy of heapledger, %s, is preloaded before it and "
          "tracks the program\n",
          self_path(), owner);
    else
      notice_untracked(
          "heapledger: tracking disabled: the program's malloc is %s's, not heapledger's\n", owner);
    g_active.store(false, std::memory_order_release);
    return;
  }
  if (!g_state.stacks.init(&g_state.modules)) {  // out of address space (ulimit -v)
    notice_untracked("heapledger: tracking disabled: no memory for the stack table\n");
    g_active.store(false, std::memory_order_release);
    return;
  }
  g_state.counters.live.set_site_sink(adjust_site);
  give_early_blocks_their_callers();
  g_exit_key_ready = pthread_key_create(&g_exit_key, remember_dead_stack) == 0;
  Quarantine::Hooks held = g_state.pool.quarantine;
  held.read_start = read_freed_record;
  g_state.quarantine.init(static_cast<std::size_t>(g_state.options.quarantine_mb) << 20,
                          std::size_t{1} << 16, held);
  g_state.defer_frees =
      g_state.options.quarantine_mb > 0 && std::strcmp(g_state.options.on_error, "abort") != 0;
  if (!std::strcmp(g_state.options.unwind, "libunwind")) g_state.unwinding.mode = Unwinding::kLibunwind;
  if (!std::strcmp(g_state.options.unwind, "verify")) g_state.unwinding.mode = Unwinding::kVerify;
  fast_unwind::init(g_state.runtime, &g_state.modules, g_state.self_start, g_state.self_end,
                    g_state.unwinding.mode == Unwinding::kFast);
  // Warm the unwinders up (their first use allocates and reads unwind tables) before tracking.
  // libunwind only where it takes every stack: its first walk clears a 256 KiB cache for the
  // thread (64 page faults, 1 ms of every process on a VM where a fault costs 15 us), and with
  // the fast unwinder most programs never need it.
  if (g_state.unwinding.mode != Unwinding::kFast) {
    std::uintptr_t warm[8];
    libunwind_backtrace(warm, 8);
  }
  std::uintptr_t warm_fast[8];
  std::uint32_t memo;
  fast_unwind::capture(warm_fast, 8, 0, &memo);
  g_state.recording.store(true, std::memory_order_release);
  keep_report_room();
  if (g_state.options.report_on_signal) take_stop_signals();
}

// Every tracker lock, in one fixed order, so a child never inherits a lock held by a thread
// that does not exist in it.
void prefork() {
  // First, holding nothing: a call in flight may wait for the loader's lock, and its holder (in
  // dlopen or dlclose) allocate and free through the locks below.
  g_state.modules.loader_calls().prefork();
  g_reporter_lock.lock();
  fast_unwind::prefork();
  g_state.modules.lock();
  g_state.timeline.lock.lock();
  g_state.errors.lock.lock();
  g_state.dead_stacks.lock.lock();
  g_state.counters.orphan_lock.lock();
  g_state.counters.spare_lock.lock();
  g_state.counters.live.lock();
  g_state.ledger.lock_all();
  g_state.quarantine.prefork();
  internal_alloc_prefork();
}

namespace {
void postfork(bool child) {
  internal_alloc_postfork();
  g_state.quarantine.postfork();
  g_state.ledger.unlock_all();
  g_state.counters.live.unlock();
  g_state.counters.spare_lock.unlock();
  g_state.counters.orphan_lock.unlock();
  g_state.dead_stacks.lock.unlock();
  g_state.errors.lock.unlock();
  g_state.timeline.lock.unlock();
  g_state.modules.unlock();
  fast_unwind::postfork();
  g_reporter_lock.unlock();
  g_state.modules.loader_calls().postfork(child);
}
}  // namespace

void postfork_parent() { postfork(false); }

// A child forked while (or after) the parent wrote its report writes its own.
void postfork_child() {
  postfork(true);
  // The child's events are stamped after every one it inherited, even within one tick of the
  // coarse clock (or before its first, where times read 0): its report tells the reachable sites
  // it allocated from since the fork from those it only inherited (reporter.cc,
  // ReachableListing). The fork's own time is the precise clock's (it read N.006 ms, one tick's
  // time and a microsecond: a user trial).
  g_state.event_floor_us = std::max(now_us(), event_us() + 1);
  g_state.forked_at_us = static_cast<std::int64_t>(g_state.event_floor_us);  // on its blocks' clock
  g_state.pid = static_cast<std::uint32_t>(getpid());
  // A thread number of its own at its next allocation: the blocks it inherited stay the
  // parent's thread's (the directory has that one's id and name).
  tl_thread.index = 0;
  g_state.stderr_identity.said_why.store(false);  // its report says why it is where it is too
  g_state.exiting.store(0);
  g_state.reporter.store(0);
  g_state.reported.store(false);
  g_state.stdio_flushed_after.store(false);
  g_state.report_progress.store(0);
  forget_parents_ending();
  stop_signals::after_fork();
}

}  // namespace heapledger::detail::tracker
