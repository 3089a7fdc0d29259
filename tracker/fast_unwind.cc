// See fast_unwind.h.
#include "tracker/fast_unwind.h"

#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstring>

#include "shim/config.h"
#include "shim/os.h"
#include "shim/spin_lock.h"
#include "tracker/eh_frame.h"
#include "tracker/internal_alloc.h"
#include "tracker/modules.h"
#include "tracker/runtime_api.h"

// The registers a walk starts from, as they are in the caller right after the call returns:
// regs[0] = return address, regs[1] = the caller's rsp, regs[2] = rbp (callee-saved, untouched).
extern "C" void heapledger_caller_registers(std::uintptr_t regs[3]);
asm(R"(
  .text
  .p2align 4
  .globl heapledger_caller_registers
  .hidden heapledger_caller_registers
  .type heapledger_caller_registers, @function
heapledger_caller_registers:
  .cfi_startproc
  movq (%rsp), %rax
  movq %rax, (%rdi)
  leaq 8(%rsp), %rax
  movq %rax, 8(%rdi)
  movq %rbp, 16(%rdi)
  ret
  .cfi_endproc
  .size heapledger_caller_registers, .-heapledger_caller_registers
)");

// The stack pointer the process started with (the dynamic linker sets it: argc is there).
extern "C" void* __libc_stack_end;

namespace heapledger::detail::fast_unwind {

bool main_thread_bounds(std::uintptr_t* lo, std::uintptr_t* hi) {
  constexpr std::uintptr_t kPage = 4096, kMaxSpan = std::uintptr_t{128} << 20;
  const auto start = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
  const auto* name = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
  rlimit limit;
  if (start == 0 || !name || syscall(SYS_gettid) != getpid() ||
      syscall(SYS_prlimit64, 0, RLIMIT_STACK, nullptr, &limit) != 0 ||
      limit.rlim_cur == RLIM_INFINITY)
    return false;
  // The top of the stack's mapping, from which the kernel counts the limit: the executable's name
  // is what it copied there first (ending 8 bytes below the top), above argv and the environment.
  const std::uintptr_t name_end = reinterpret_cast<std::uintptr_t>(name) + std::strlen(name) + 1;
  if (name_end <= start || name_end - start > kMaxSpan) return false;
  const std::uintptr_t top = (name_end + kPage - 1) & ~(kPage - 1);
  const std::uintptr_t span = std::min<std::uintptr_t>(limit.rlim_cur & ~(kPage - 1), kMaxSpan);
  *hi = (start + kPage) & ~(kPage - 1);
  if (top - *hi >= span) return false;  // the arguments take the whole limit
  *lo = top - span;
  // Not on that stack: a child forked from another thread (it is its process's main thread, on
  // the forking thread's stack; it went to libunwind for every stack, a review's).
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return here >= *lo && here < *hi;
}

namespace {

// Rules by return address (and unload epoch), learned once each: open addressing, written by one
// thread at a time (under g_learn_lock), read without locks. An entry's rule is stored before
// its key is published. It starts at 1,024 entries and grows fourfold when half full (one table
// of 131,072 from the start spread a small program's few hundred rules over most of its 512
// pages, a page fault each): a grown table is filled, then published, and the old one stays
// mapped for readers still in it (a miss there only sends them to learn()). Never shrinks; when
// the largest is 3/4 full, new addresses go to libunwind.
struct RuleTable {
  static constexpr std::uint32_t kFirstBits = 10, kMaxBits = 17;
  struct Entry {
    std::atomic<std::uint64_t> key;   // return address | epoch << 48; 0: empty
    std::atomic<std::uint64_t> rule;  // FrameRule's bytes
  };
  struct Table {
    std::uint32_t bits;
    std::uint32_t used;  // written under g_learn_lock only
    Entry* entries() { return reinterpret_cast<Entry*>(this + 1); }
    const Entry* entries() const { return reinterpret_cast<const Entry*>(this + 1); }
    std::uint32_t mask() const { return (1u << bits) - 1; }
    std::uint32_t home(std::uint64_t key) const {
      return static_cast<std::uint32_t>((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
    }
    static std::size_t bytes(std::uint32_t bits) {
      return sizeof(Table) + (std::size_t{sizeof(Entry)} << bits);
    }
  };
  static_assert(sizeof(Table) % alignof(Entry) == 0);
  std::atomic<Table*> table{nullptr};

  bool init() {
    Table* first = make(kFirstBits);
    // Every process learns rules: each looked up (a read) before it is written, which page by
    // page mapped the zero page and then faulted again.
    if (first) os::prefault(first, Table::bytes(kFirstBits));
    return (table = first) != nullptr;
  }
  HL_ALWAYS_INLINE bool find(std::uint64_t key, FrameRule* out) const {
    const Table* t = table.load(std::memory_order_acquire);
    const Entry* e = t->entries();
    for (std::uint32_t i = t->home(key);; i = (i + 1) & t->mask()) {
      std::uint64_t k = e[i].key.load(std::memory_order_acquire);
      if (k == key)
        return *out = std::bit_cast<FrameRule>(e[i].rule.load(std::memory_order_relaxed)), true;
      if (k == 0) return false;
    }
  }
  void insert(std::uint64_t key, FrameRule rule) {  // under g_learn_lock
    Table* t = table.load(std::memory_order_relaxed);
    if (t->used >= (t->mask() + 1) / 2 && t->bits < kMaxBits) {
      if (Table* bigger = make(std::min(t->bits + 2, kMaxBits))) {
        for (std::uint32_t i = 0; i <= t->mask(); ++i)
          if (std::uint64_t k = t->entries()[i].key.load(std::memory_order_relaxed))
            put(bigger, k, t->entries()[i].rule.load(std::memory_order_relaxed));
        table.store(bigger, std::memory_order_release);
        t = bigger;
      }
    }
    if (t->used >= (t->mask() + 1) / 4 * 3) return;
    put(t, key, std::bit_cast<std::uint64_t>(rule));
  }

 private:
  static Table* make(std::uint32_t bits) {
    auto* t = static_cast<Table*>(os::map_internal(Table::bytes(bits)));
    if (t) t->bits = bits;
    return t;
  }
  static void put(Table* t, std::uint64_t key, std::uint64_t rule) {
    Entry* e = t->entries();
    std::uint32_t i = t->home(key);
    while (e[i].key.load(std::memory_order_relaxed) != 0) {
      if (e[i].key.load(std::memory_order_relaxed) == key) return;
      i = (i + 1) & t->mask();
    }
    e[i].rule.store(rule, std::memory_order_relaxed);
    e[i].key.store(key, std::memory_order_release);
    ++t->used;
  }
};
static_assert(sizeof(FrameRule) == sizeof(std::uint64_t));

constinit RuleTable g_rules;
constinit SpinLock g_learn_lock;
const RuntimeApi* g_runtime = nullptr;
ModuleMap* g_modules = nullptr;

// This thread's stack, where a walk may read. Other stacks (sigaltstack, coroutines) go to
// libunwind: their bounds are unknown, and a wrong rule must never read unmapped memory.
struct Bounds {
  std::uintptr_t lo, hi;
  std::uint8_t state;  // 0: not looked up, 1: known, 2: unavailable
};
thread_local Bounds tl_bounds HL_TLS;
thread_local int tl_in_getattr HL_TLS;  // inside pthread_getattr_np (see fast_unwind.h)

// The alternate signal stack the thread installed with SS_AUTODISARM (see note_signal_stack).
struct SignalStack {
  std::uintptr_t lo = 0, size = 0;
};
thread_local SignalStack tl_disarmed HL_TLS;
std::atomic<bool> g_signal_stack_seen{false};  // some thread installed one (through sigaltstack)

HL_NOINLINE bool look_up_bounds() {
  if (tl_in_getattr) return false;  // not now: looked up at a later walk
  tl_bounds.state = 2;
  if (main_thread_bounds(&tl_bounds.lo, &tl_bounds.hi)) {
    tl_bounds.state = 1;
    return true;
  }
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
    tl_bounds.lo = reinterpret_cast<std::uintptr_t>(addr);
    tl_bounds.hi = tl_bounds.lo + size;
    tl_bounds.state = 1;
  }
  pthread_attr_destroy(&attr);
  return tl_bounds.state == 1;
}

constexpr std::uintptr_t kLearnStackMin = 32 * 1024;

// Reads the rule for the call that returns to ra from its module's CFI (tracker/eh_frame.h, in
// memory). Never waits: if another thread is learning (or a fork holds the lock), this walk goes
// to libunwind. Only on the thread's own stack with room left, as capture() decides for
// libunwind (a thread made with 16 KiB learns nothing past that): never on another stack (a
// signal stack may be 8 KiB in all), where a walk stops at the frame.
HL_NOINLINE bool learn(std::uintptr_t ra, std::uint64_t key, FrameRule* out) {
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const std::uintptr_t room = frame - tl_bounds.lo;
  if (room >= tl_bounds.hi - tl_bounds.lo || room < kLearnStackMin) return false;
  if (!g_learn_lock.try_lock()) return false;
  if (g_rules.find(key, out)) {  // learned meanwhile (or this walk read a table since grown)
    g_learn_lock.unlock();
    return true;
  }
  FrameRule rule;
  rule.kind = FrameRule::kComplex;
  // The rule is read from the module's memory: first the module map brought up to date with the
  // loader's (one callback), so that a module unloaded behind our back (glibc's own dlclose of a
  // failed dlopen) is not taken for the code now at its addresses.
  g_modules->sync();
  std::uint16_t index = g_modules->find(ra);
  if (index != ModuleMap::kUnknown) {
    // ra - 1: the call instruction, whose rule describes the caller's state at the call.
    rule = eh_frame::rule_at(g_modules->get(index).eh, ra - 1);
  }
  g_rules.insert(key, rule);
  g_learn_lock.unlock();
  *out = rule;
  return true;
}

// Recent stacks of this thread, by their first program frame (two-way sets, see Memo).
// A hit is the same first frame with every stack word the walk read unchanged: the return
// address of each later frame, then each saved rbp an rbp-based step used. One array of
// (address, value) so that a hit reads one stretch of memory.
struct MemoEntry {
  // Words checked on a hit; a stack that needs more is not memoised.
  static constexpr int kChecks = 32;
  struct Check {
    std::uintptr_t at, value;
  };
  std::uintptr_t key_ra, key_sp;
  std::uint32_t epoch, memo;
  std::uint16_t max_frames, n;  // n: checks; max_frames 0: entry unused
  Check checks[kChecks];
};
// The chain of libheapledger.so's own frames from capture() up to the program's first frame, for
// one entry path (malloc, operator new, free, ...): checked by its slots like a memo entry, it
// gives the program's first frame without stepping through our frames. Every one of those steps
// is rsp-based, so each frame sits at a fixed offset from where capture() was called: a frame's
// offset follows from the return addresses below it, which the slots confirm. The path serves at
// any depth of the program's stack.
struct OwnPath {
  std::uintptr_t ra0;       // where capture() was called from; 0: unused
  std::uintptr_t prog_off;  // the program's first frame, from sp0: its return address is at -8
  std::uint32_t n;          // own frames after the first, checked by their slots
  std::uintptr_t ra[kOwnFramesMax], off[kOwnFramesMax];
};

// The program frames of this thread's last walk. A new walk that reaches one of its frames (same
// return address and sp, and rbp where the steps from there use it) and finds the memory those
// steps read unchanged takes the rest from it: the inner frames of two allocations differ, the
// outer ones (an interpreter's loop, main) rarely do.
struct LastWalk {
  static constexpr int kFrames = 96;
  // Each frame's registers; rbp as the walk had it (after a take-over, exact only where a step
  // uses it).
  std::uintptr_t ra[kFrames], sp[kFrames], bp[kFrames];
  std::uintptr_t step[kFrames];  // the step from each frame, as StepTrace::packed()
  // A complete walk that ended reading a zero return address: where (0: a rule ended it).
  std::uintptr_t end_slot;
  int n;             // frames stored
  int rbp_step;      // no step from a frame further out than this one is rbp-based (-1: none is)
  bool complete;     // the walk ended at the outermost frame, and all of it is stored
  std::uint32_t epoch;
};

// Walks of one frame limit: the last one, and the one being written (not on the stack: threads
// with 16 KiB stacks allocate too).
struct WalkLane {
  LastWalk walks[2];
  std::uint32_t last;
  std::uint32_t max_frames;  // the limit of the walks in this lane; 0: unused
};

struct Memo {
  Memo* next_spare;
  // One lane per frame limit in use: allocations take more frames than the frees the quarantine
  // records, and a short free walk could not lend its outer frames to the next allocation's.
  WalkLane lanes[2];
  std::uint32_t recent_lane;
  std::uintptr_t scratch[kScratchWords];
  std::uintptr_t frames[kFrameWords];
  static constexpr std::uint32_t kPaths = 8;  // malloc, calloc, realloc, free, new, delete, ...
  OwnPath paths[kPaths];
  std::uint32_t next_path;
  std::uint8_t path_after[kPaths];  // the path found after each one, last time
  std::uint8_t last_path;           // the path found last
  // Two-way sets: a loop that allocates at one site and frees at another keeps both. 128
  // entries: an interpreter allocates from many sites at many depths (python3 with
  // PYTHONMALLOC=malloc: 2.84x -> 2.3x glibc going from 16 entries, sqlite3 1.96x -> 1.7x;
  // 256 gained a few % more for another 70 KiB per thread).
  static constexpr std::uint32_t kSets = 64, kWays = 2;
  // Each way names its entry in `pool` (1 + index; 0: none yet), taken front to back as first
  // needed: a short process's few stacks write a few adjacent pages of the pool. With the
  // entries in their sets, they were spread over all 68 KiB, and a lookup's read of a page not
  // written yet mapped the zero page, then the entry's write faulted again (a tracked sed: 29 of
  // its 297 page faults).
  std::uint8_t way_entry[kSets][kWays];
  std::uint8_t victim[kSets];  // the way to replace next in each set
  std::uint32_t pool_used;
  MemoEntry pool[kSets * kWays];
  static_assert(kSets * kWays <= 255);
  MemoEntry* pending;  // filled by the last capture(), waiting for remember()
  std::uint16_t pending_max_frames;
  static std::uint32_t set(std::uintptr_t ra, std::uintptr_t sp) {
    static_assert(std::has_single_bit(kSets));
    return static_cast<std::uint32_t>(((ra ^ (sp << 7)) * 0x9E3779B97F4A7C15ull) >> (64 - std::countr_zero(kSets)));
  }
};
// Each thread's memo (~88 KiB) lives in tracker memory, not in static TLS, which would
// come out of every thread's stack (a program creating threads with 16 KiB stacks would fail).
// Threads that end hand theirs to the next thread.
struct MemoSlot {
  Memo* memo;
  bool retired;  // this thread has ended (its TLS destructors are running): no new memo
};
thread_local MemoSlot tl_memo_slot HL_TLS;
constinit SpinLock g_spare_lock;
Memo* g_spare_memos HL_GUARDED_BY(g_spare_lock) = nullptr;  // linked through Memo::next_spare

HL_NOINLINE Memo* new_memo() {
  if (tl_memo_slot.retired) return nullptr;
  Memo* m = nullptr;
  {
    SpinGuard guard(g_spare_lock);
    if ((m = g_spare_memos)) g_spare_memos = m->next_spare;
  }
  if (m) {
    std::memset(static_cast<void*>(m), 0, sizeof *m);
  } else if ((m = static_cast<Memo*>(
                  internal_alloc(sizeof(Memo))))) {  // zero-filled, not faulted in
    // Everything before the entries is read and written by the thread's first walks (each page
    // read first: the zero page, then a second fault at the write); the entries are taken front
    // to back, and a short process uses few.
    os::prefault(m, offsetof(Memo, pool));
  }
  return tl_memo_slot.memo = m;
}

HL_ALWAYS_INLINE Memo* this_thread_memo() {
  Memo* m = tl_memo_slot.memo;
  return HL_LIKELY(m != nullptr) ? m : new_memo();
}

std::uintptr_t g_self_start = 0, g_self_end = 0;
bool g_stop_at_signal = false;
HL_ALWAYS_INLINE bool in_self(std::uintptr_t a) { return a - g_self_start < g_self_end - g_self_start; }

// What one step read besides the return address: whether the frame's CFA was rbp-based, and
// where the caller's rbp was restored from (0: not restored).
struct StepTrace {
  bool cfa_from_rbp = false;
  std::uintptr_t bp_slot = 0;
  // Both in a word: stack slots are 8-byte aligned, so bit 0 is free for cfa_from_rbp.
  static constexpr std::uintptr_t kRbpBased = 1;
  std::uintptr_t packed() const { return bp_slot | (cfa_from_rbp ? kRbpBased : 0); }
};

// One frame of a walk, stepped to its caller.
struct Cursor {
  std::uintptr_t ra, sp, bp, hi;
  std::uint64_t tag;
  enum Step { kStepped, kOutermost, kFailed, kSignal };
  HL_ALWAYS_INLINE Step step(StepTrace* trace) {
    *trace = StepTrace{};
    FrameRule rule;
    const std::uint64_t key = ra | tag;
    if (HL_UNLIKELY(!g_rules.find(key, &rule)) && !learn(ra, key, &rule)) return kFailed;
    if (rule.kind == FrameRule::kOutermost) return kOutermost;
    if (HL_UNLIKELY(rule.kind != FrameRule::kSimple))
      return rule.kind == FrameRule::kSignal ? kSignal : kFailed;
    std::uintptr_t cfa = (rule.cfa_from_rbp ? bp : sp) + static_cast<std::uintptr_t>(rule.cfa_offset);
    // Every read is inside this thread's stack, above the frame being left.
    if (HL_UNLIKELY(cfa <= sp || cfa > hi)) return kFailed;
    trace->cfa_from_rbp = rule.cfa_from_rbp;
    if (rule.rbp_saved) {
      std::uintptr_t at = cfa + static_cast<std::intptr_t>(rule.rbp_offset);
      if (HL_UNLIKELY(at < sp || at % 8 != 0)) return kFailed;  // a slot is 8-aligned (StepTrace)
      std::memcpy(&bp, reinterpret_cast<const void*>(at), sizeof bp);
      trace->bp_slot = at;
    }
    std::memcpy(&ra, reinterpret_cast<const void*>(cfa - 8), sizeof ra);
    sp = cfa;
    return ra == 0 ? kOutermost : kStepped;
  }
};

HL_ALWAYS_INLINE bool slots_hold(const std::uintptr_t* ra, const std::uintptr_t* sp, std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uintptr_t v;
    std::memcpy(&v, reinterpret_cast<const void*>(sp[i] - 8), sizeof v);
    if (v != ra[i]) return false;
  }
  return true;
}

HL_ALWAYS_INLINE bool word_holds(std::uintptr_t at, std::uintptr_t value) {
  std::uintptr_t v;
  std::memcpy(&v, reinterpret_cast<const void*>(at), sizeof v);
  return v == value;
}

HL_ALWAYS_INLINE bool memo_matches(const MemoEntry& e, std::uintptr_t ra, std::uintptr_t sp,
                                   std::uint32_t epoch, int max_frames) {
  if (e.key_ra != ra || e.key_sp != sp || e.epoch != epoch || e.max_frames != max_frames) return false;
  for (std::uint32_t i = 0; i < e.n; ++i)
    if (!word_holds(e.checks[i].at, e.checks[i].value)) return false;
  return true;
}

// The saved rbp words that the rbp-based steps among steps[from .. last] depend on, from the
// outermost in: check(i) for each step i that restored an rbp a later rbp-based step used,
// stopping at the first that returns false (then false). *first_used: whether one of them used
// the rbp frame `from` had (no step restored one before it).
template <class Check>
HL_ALWAYS_INLINE bool for_each_used_rbp(const std::uintptr_t* steps, int from, int last,
                                        bool* first_used, Check&& check) {
  bool bp_used = false;  // the rbp of frame i + 1 decides a step further out
  for (int i = last; i >= from; --i) {
    if (steps[i] & ~StepTrace::kRbpBased) {  // step i restored frame i + 1's rbp
      if (bp_used && !check(i)) return false;
      bp_used = false;
    }
    bp_used = bp_used || (steps[i] & StepTrace::kRbpBased) != 0;
  }
  *first_used = bp_used;
  return true;
}

// The last step of walk w that decided its frames: the one that ended a complete walk, else the
// one into its last frame.
HL_ALWAYS_INLINE int last_step(const LastWalk& w) { return w.complete ? w.n - 1 : w.n - 2; }

// Whether the steps from frame `from` of walk w to its end would go the same way again from a
// frame with the same return address and sp and this rbp: every return address they read is
// still there (the zero one that ended a complete walk too), and so is every saved rbp a later
// rbp-based step uses (or, if none was restored before one, rbp is the same).
HL_ALWAYS_INLINE bool walk_holds(const LastWalk& w, int from, std::uintptr_t bp) {
  if (!slots_hold(&w.ra[from + 1], &w.sp[from + 1], static_cast<std::uint32_t>(w.n - from - 1)))
    return false;
  if (w.complete && w.end_slot != 0 && !word_holds(w.end_slot, 0)) return false;
  if (w.rbp_step < from) return true;  // rsp-based all the way
  bool first_used;
  return for_each_used_rbp(
             w.step, from, std::min(w.rbp_step, last_step(w)), &first_used,
             [&w](int i) { return word_holds(w.step[i] & ~StepTrace::kRbpBased, w.bp[i + 1]); }) &&
         (!first_used || w.bp[from] == bp);
}

// The program's first frame (return address, sp) and how many raw frames precede it, from a
// known own path.
// The lane of walks with this frame limit; a limit not seen lately takes the other lane.
HL_ALWAYS_INLINE WalkLane& lane_for(Memo& m, std::uint32_t max_frames) {
  std::uint32_t i = m.lanes[0].max_frames == max_frames ? 0
                    : m.lanes[1].max_frames == max_frames ? 1
                                                          : m.recent_lane ^ 1;
  m.lanes[i].max_frames = max_frames;
  m.recent_lane = i;
  return m.lanes[i];
}

// Whether path p leads from (ra0, sp0) through our frames to a program frame, which it returns.
HL_ALWAYS_INLINE bool own_path_holds(const OwnPath& p, std::uintptr_t ra0, std::uintptr_t sp0,
                                     std::uintptr_t* key_ra) {
  if (p.ra0 != ra0 || sp0 + p.prog_off > tl_bounds.hi) return false;
  for (std::uint32_t i = 0; i < p.n; ++i) {
    std::uintptr_t v;
    std::memcpy(&v, reinterpret_cast<const void*>(sp0 + p.off[i] - 8), sizeof v);
    if (v != p.ra[i]) return false;
  }
  std::memcpy(key_ra, reinterpret_cast<const void*>(sp0 + p.prog_off - 8), sizeof *key_ra);
  return !in_self(*key_ra);  // more of our frames this time: another path, or a walk
}

// Tries first the path that followed the last one found last time (a loop that allocates and
// frees alternates between two), then the others.
HL_ALWAYS_INLINE bool own_path_hit(Memo& tl_memo, std::uintptr_t ra0, std::uintptr_t sp0, std::uintptr_t* key_ra,
                                   std::uintptr_t* key_sp, int* n) {
  const std::uint32_t guess = tl_memo.path_after[tl_memo.last_path];
  std::uint32_t found = guess;
  if (!own_path_holds(tl_memo.paths[guess], ra0, sp0, key_ra)) {
    for (found = 0; found < Memo::kPaths; ++found)
      if (found != guess && own_path_holds(tl_memo.paths[found], ra0, sp0, key_ra)) break;
    if (found == Memo::kPaths) return false;
  }
  tl_memo.path_after[tl_memo.last_path] = static_cast<std::uint8_t>(found);
  tl_memo.last_path = static_cast<std::uint8_t>(found);
  const OwnPath& p = tl_memo.paths[found];
  *key_sp = sp0 + p.prog_off;
  *n = static_cast<int>(p.n) + 1;
  return true;
}

// Walks our own frames from (ra0, sp0): the program's first frame, remembered as an own path
// when every own frame is rsp-based. False if the walk cannot be done here.
HL_NOINLINE bool walk_own_path(Memo& tl_memo, const std::uintptr_t* regs, std::uint64_t tag, std::uintptr_t* key_ra,
                               std::uintptr_t* key_sp, int* n_out) {
  Cursor c{regs[0], regs[1], regs[2], tl_bounds.hi, tag};
  std::uintptr_t ra[kOwnFramesMax], sp[kOwnFramesMax];
  StepTrace trace;
  bool all_rsp = true;
  int n = 0;
  while (in_self(c.ra)) {
    if (n > 0) ra[n - 1] = c.ra, sp[n - 1] = c.sp;
    if (++n >= kOwnFramesMax || c.step(&trace) != Cursor::kStepped) return false;
    all_rsp = all_rsp && !trace.cfa_from_rbp;
  }
  *key_ra = c.ra, *key_sp = c.sp, *n_out = n;
  if (all_rsp && n > 0) {
    OwnPath& p = tl_memo.paths[tl_memo.next_path++ % Memo::kPaths];
    p.ra0 = regs[0], p.prog_off = c.sp - regs[1];
    p.n = static_cast<std::uint32_t>(n - 1);
    for (int i = 0; i + 1 < n; ++i) p.ra[i] = ra[i], p.off[i] = sp[i] - regs[1];
  }
  return true;
}

}  // namespace

void init(const RuntimeApi* runtime, ModuleMap* modules, std::uintptr_t self_start,
          std::uintptr_t self_end, bool stop_at_signal) {
  g_stop_at_signal = stop_at_signal;
  if (!runtime || self_start >= self_end) return;
  if (!g_rules.init()) return;
  g_self_start = self_start;
  g_self_end = self_end;
  // Binds sigaltstack now: its lazy binding, on a small signal stack, overflowed it (the dynamic
  // linker's resolver saves the vector registers there).
  stack_t ss;
  sigaltstack(nullptr, &ss);
  g_modules = modules;
  g_runtime = runtime;
}

bool on_own_stack(std::uintptr_t addr) {
  return tl_bounds.state == 1 && addr >= tl_bounds.lo && addr < tl_bounds.hi;
}

void note_signal_stack(const void* lo, std::size_t size, int flags) {
  constexpr int kAutoDisarm =
      static_cast<int>(1u << 31);  // SS_AUTODISARM: not in glibc 2.36's headers
  if (lo && !(flags & SS_DISABLE)) g_signal_stack_seen.store(true, std::memory_order_relaxed);
  if (lo && (flags & kAutoDisarm) && !(flags & SS_DISABLE))
    tl_disarmed = SignalStack{reinterpret_cast<std::uintptr_t>(lo), size};
  else
    tl_disarmed = SignalStack{};
}

// A memo entry for the stack whose first program frame is (ra, sp), if its slots still hold.
HL_ALWAYS_INLINE const MemoEntry* memo_hit(Memo& tl_memo, std::uintptr_t ra, std::uintptr_t sp,
                                           std::uint32_t epoch, int max_frames) {
  const std::uint32_t set = Memo::set(ra, sp);
  for (std::uint32_t way = 0; way < Memo::kWays; ++way) {
    const std::uint8_t entry = tl_memo.way_entry[set][way];
    if (entry == 0) continue;
    const MemoEntry& hit = tl_memo.pool[entry - 1];
    if (memo_matches(hit, ra, sp, epoch, max_frames)) {
      tl_memo.victim[set] = static_cast<std::uint8_t>(way ^ 1);
      return &hit;
    }
  }
  return nullptr;
}

namespace {
// A walk with no memo from c on: the program's frames into out (ours among the first
// kOwnFramesMax cut), until a step fails or max_frames are taken; *last: the return address it
// ended at.
int walk_from(Cursor c, std::uintptr_t* out, int max_frames, std::uintptr_t* last) {
  int depth = 0;
  for (int n = 0;; ++n) {
    if (n < kOwnFramesMax && in_self(c.ra))
      depth = 0;  // ours, so far: cut
    else if (depth < max_frames)
      out[depth++] = c.ra;
    else
      break;
    StepTrace trace;
    if (c.step(&trace) != Cursor::kStepped) break;
  }
  *last = c.ra;
  return depth;
}
}  // namespace

// A walk on the thread's alternate signal stack (a handler installed with SA_ONSTACK, as crash
// handlers and runtimes that catch stack overflow are): its bounds come from sigaltstack(), and
// it ends at the signal trampoline. libunwind there needs more stack than such a stack may have
// (SIGSTKSZ is 8 KiB, and the kernel's signal frame takes ~3 KiB of it): a handler that called
// strdup on one crashed. So nothing else: no memo (the stack may be gone later), no rule learned
// (as on a thread's stack with little left); a frame whose rule is not known yet ends the walk
// there.
HL_NOINLINE int capture_on_signal_stack(std::uintptr_t* out, int max_frames,
                                        const std::uintptr_t regs[3], std::uint64_t tag) {
  if (!g_stop_at_signal) return kUseLibunwind;
  stack_t ss;
  std::uintptr_t lo, size;
  if (sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
    lo = reinterpret_cast<std::uintptr_t>(ss.ss_sp);
    size = ss.ss_size;
  } else {  // disarmed while its handler runs
    lo = tl_disarmed.lo;
    size = tl_disarmed.size;
  }
  if (regs[1] - lo >= size) return kUseLibunwind;
  Cursor c{regs[0], regs[1], regs[2], lo + size, tag};
  std::uintptr_t last;
  const int depth = walk_from(c, out, max_frames, &last);  // to the trampoline, or no rule known
  return depth == 0 && in_self(last) ? kCallerOnly : depth;
}

bool room_after_exit(std::size_t buffer_bytes) {
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return g_runtime && on_own_stack(sp) && sp - tl_bounds.lo >= kLearnStackMin + buffer_bytes;
}

// As a walk on a signal stack (capture_on_signal_stack), within the thread's stack: rules are
// learned as anywhere there (room_after_exit left room for it).
HL_NOINLINE int capture_after_exit(std::uintptr_t* out, int max_frames, std::uint32_t epoch) {
  std::uintptr_t regs[3];
  heapledger_caller_registers(regs);
  if (!on_own_stack(regs[1])) return kCallerOnly;
  const std::uint64_t tag = static_cast<std::uint64_t>(epoch & 0xFFFF) << 48;
  Cursor c{regs[0], regs[1], regs[2], tl_bounds.hi, tag};
  std::uintptr_t last;
  const int depth = walk_from(c, out, max_frames, &last);
  return depth == 0 ? kCallerOnly : depth;
}

bool on_signal_stack(std::uintptr_t addr) {
  // No system call for the programs that never installed one (most).
  if (!g_signal_stack_seen.load(std::memory_order_relaxed)) return false;
  stack_t ss;
  if (sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) return true;
  return addr - tl_disarmed.lo < tl_disarmed.size;
}

HL_NOINLINE int capture(std::uintptr_t* out, int max_frames, std::uint32_t epoch, std::uint32_t* memo,
                        std::uintptr_t caller_ra, std::uintptr_t caller_sp) {
  if (HL_UNLIKELY(!g_runtime)) return kUseLibunwind;
  Memo* memo_of_thread = this_thread_memo();
  if (HL_UNLIKELY(!memo_of_thread)) return tl_memo_slot.retired ? kThreadEnded : kUseLibunwind;
  Memo& tl_memo = *memo_of_thread;
  tl_memo.pending = nullptr;
  // The entry point named the program's first frame: a stack seen before is known from it. An
  // entry point called from another of ours names one of our frames, which is never a key.
  if (caller_ra != 0 && !in_self(caller_ra)) {
    if (const MemoEntry* hit = memo_hit(tl_memo, caller_ra, caller_sp, epoch, max_frames))
      return *memo = hit->memo, kMemoHit;
  }
  std::uintptr_t regs[3];
  heapledger_caller_registers(regs);
  const std::uint64_t tag = static_cast<std::uint64_t>(epoch & 0xFFFF) << 48;
  if (HL_UNLIKELY(tl_bounds.state != 1 || regs[1] < tl_bounds.lo || regs[1] >= tl_bounds.hi)) {
    // Not on the thread's stack as known: a signal stack is looked at first (looking the thread's
    // stack up allocates, deeper than a small signal stack has room for), then the thread's.
    const int n = capture_on_signal_stack(out, max_frames, regs, tag);
    if (n != kUseLibunwind || tl_bounds.state == 1 || !look_up_bounds()) return n;
    if (regs[1] < tl_bounds.lo || regs[1] >= tl_bounds.hi) return kUseLibunwind;
  }
  // Little stack left (a thread made with 16 KiB): no rule is learned here, and libunwind is no
  // way out either: it needs more than that, and its per-thread cache is
  // dynamic TLS, which glibc allocates on first use, deeper still (a thread that called malloc
  // with 14 KiB of its 16 KiB left crashed). The walk takes the frames whose rules are known.
  const bool tight = regs[1] - tl_bounds.lo < kLearnStackMin;

  // The program's first frame, past our own.
  std::uintptr_t key_ra, key_sp;
  int n;  // raw frames before it (our own)
  if (!own_path_hit(tl_memo, regs[0], regs[1], &key_ra, &key_sp, &n) &&
      !walk_own_path(tl_memo, regs, tag, &key_ra, &key_sp, &n))
    return tight ? kCallerOnly : kUseLibunwind;
  if (const MemoEntry* hit = memo_hit(tl_memo, key_ra, key_sp, epoch, max_frames))
    return *memo = hit->memo, kMemoHit;
  const std::uint32_t set = Memo::set(key_ra, key_sp);

  // A new stack: walk it all. Frames of ours further in (our operator new called through libstdc++'s nothrow
  // one) are cut too, as the libunwind path does: within the first kOwnFramesMax raw frames.
  Cursor c{regs[0], regs[1], regs[2], tl_bounds.hi, tag};
  StepTrace trace;
  for (int i = 0; i < n; ++i)
    if (c.step(&trace) != Cursor::kStepped) return kUseLibunwind;
  if (c.ra != key_ra || c.sp != key_sp) return kUseLibunwind;  // cannot be: the same walk
  const int first_program = n;
  int depth = 0;
  bool memoisable = true;
  WalkLane& lane = lane_for(tl_memo, static_cast<std::uint32_t>(max_frames));
  LastWalk& last = lane.walks[lane.last];
  LastWalk& now = lane.walks[lane.last ^ 1];
  // One frame into the result (and into `now`, from the first program frame on); true when the
  // walk has all the frames it needs.
  auto take = [&](std::uintptr_t ra, std::uintptr_t sp, std::uintptr_t bp) {
    if (n < kOwnFramesMax && in_self(ra))
      depth = 0, memoisable = false;
    else if (depth < max_frames)
      out[depth++] = ra;
    if (const int i = n - first_program; i < LastWalk::kFrames)
      now.ra[i] = ra, now.sp[i] = sp, now.bp[i] = bp;
    ++n;
    return depth >= max_frames && n >= kOwnFramesMax;
  };
  int rbp_step = -1;                          // as LastWalk::rbp_step
  std::uintptr_t end_slot = 0;                // as LastWalk::end_slot
  int at = last.epoch == epoch ? 0 : last.n;  // the last walk's frames not yet below this one
  bool complete = false;
  for (;;) {
    if (take(c.ra, c.sp, c.bp)) break;
    while (at < last.n && last.sp[at] < c.sp) ++at;
    // A last walk cut short (by its own limit) serves only if it has all the frames we need.
    const int needed = std::max(max_frames - depth, kOwnFramesMax - n);
    if (at < last.n && last.sp[at] == c.sp && last.ra[at] == c.ra &&
        (last.complete || last.n - at - 1 >= needed) && walk_holds(last, at, c.bp)) {
      // The last walk's frame i is this walk's frame i + shift (counted from the first program
      // frame). Frames of ours can only be among the first kOwnFramesMax: one by one there, then
      // the rest in bulk.
      const int shift = n - 1 - first_program - at;
      bool enough = false;
      int i = at;  // the last walk's frame taken last
      while (!enough && i + 1 < last.n && n < kOwnFramesMax)
        ++i, enough = take(last.ra[i], last.sp[i], last.bp[i]);
      if (!enough && i + 1 < last.n) {
        const int count = std::min(last.n - (i + 1), max_frames - depth);  // > 0
        const auto words = [](int k) {
          return static_cast<std::size_t>(k) * sizeof(std::uintptr_t);
        };
        std::memcpy(out + depth, last.ra + i + 1, words(count));
        depth += count;
        if (const int stored = std::clamp(LastWalk::kFrames - (i + 1 + shift), 0, count);
            stored > 0) {
          std::memcpy(now.ra + i + 1 + shift, last.ra + i + 1, words(stored));
          std::memcpy(now.sp + i + 1 + shift, last.sp + i + 1, words(stored));
          std::memcpy(now.bp + i + 1 + shift, last.bp + i + 1, words(stored));
        }
        n += count, i += count;
        enough = depth >= max_frames;
      }
      if (!enough && !last.complete) {  // it stopped short of what we need
        if (!tight) return kUseLibunwind;
        memoisable = false;
      }
      complete = !enough && last.complete;  // it reached the outermost frame before our limit
      // The steps between them: from frame `at` into the last frame taken, and the one that
      // ended the last walk if this one ends there too (then i is the last walk's last frame).
      const int final_step = complete ? i : i - 1;
      if (const int steps = std::clamp(LastWalk::kFrames - (at + shift), 0, final_step - at + 1);
          steps > 0)
        std::memcpy(now.step + at + shift, last.step + at,
                    static_cast<std::size_t>(steps) * sizeof *now.step);
      if (last.rbp_step >= at && final_step >= at)
        rbp_step = std::min(last.rbp_step, final_step) + shift;  // or one further in
      if (complete) end_slot = last.end_slot;
      break;
    }
    const int index = n - 1 - first_program;  // of the frame being stepped from
    Cursor::Step st = c.step(&trace);
    if (st == Cursor::kSignal && g_stop_at_signal) {  // the trampoline is the last frame
      if (index < LastWalk::kFrames) now.step[index] = 0;  // its rule reads nothing
      complete = true;
      memoisable = false;
      break;
    }
    if (st == Cursor::kFailed && tight) {  // the frames so far
      memoisable = false;
      break;
    }
    if (st == Cursor::kFailed || st == Cursor::kSignal) return kUseLibunwind;
    if (index < LastWalk::kFrames) now.step[index] = trace.packed();
    if (trace.cfa_from_rbp) rbp_step = index;
    if (st == Cursor::kOutermost) {
      if (c.ra == 0) end_slot = c.sp - 8;  // a zero return address read, not a rule, ended it
      complete = true;
      break;
    }
  }
  // This walk is the next one's last walk.
  const int total = n - first_program;
  now.n = total < LastWalk::kFrames ? total : LastWalk::kFrames;
  now.complete = complete && total <= LastWalk::kFrames;
  now.epoch = epoch;
  now.rbp_step = rbp_step;
  now.end_slot = end_slot;
  lane.last ^= 1;

  // Worth remembering: frames first_program+1 .. n-1 are checked by their slots on a hit, and so
  // is each saved rbp a later rbp-based step uses, and the zero return address that ended a
  // complete walk. The first frame's own rbp is not part of the key: a stack whose steps use it
  // is not memoised.
  const int checked = n - first_program - 1;
  const int zero_end = complete && end_slot != 0 ? 1 : 0;
  if (memoisable && checked + zero_end <= MemoEntry::kChecks) {
    const int room = MemoEntry::kChecks - checked - zero_end;
    int bp_checks[MemoEntry::kChecks];  // the steps whose saved rbp is used
    int n_bp = 0;
    bool first_used = false;
    const int final_step = complete ? checked : checked - 1;  // the last step that decided a frame
    const bool fits = rbp_step < 0 || for_each_used_rbp(now.step, 0, std::min(rbp_step, final_step),
                                                        &first_used, [&](int i) {
                                                          if (n_bp == room) return false;
                                                          bp_checks[n_bp++] = i;
                                                          return true;
                                                        });
    if (fits && !first_used) {
      const std::uint32_t way = tl_memo.victim[set];
      tl_memo.victim[set] = static_cast<std::uint8_t>(way ^ 1);
      std::uint8_t& entry = tl_memo.way_entry[set][way];
      if (entry == 0) entry = static_cast<std::uint8_t>(++tl_memo.pool_used);
      MemoEntry& e = tl_memo.pool[entry - 1];
      e.key_ra = key_ra, e.key_sp = key_sp, e.epoch = epoch;
      e.max_frames = 0;  // unusable until remember()
      e.n = static_cast<std::uint16_t>(checked + n_bp + zero_end);
      for (int i = 0; i < checked; ++i) e.checks[i] = {now.sp[i + 1] - 8, now.ra[i + 1]};
      for (int k = 0; k < n_bp; ++k) {
        const int i = bp_checks[k];
        e.checks[checked + k] = {now.step[i] & ~StepTrace::kRbpBased, now.bp[i + 1]};
      }
      if (zero_end) e.checks[checked + n_bp] = {end_slot, 0};
      tl_memo.pending = &e;
      tl_memo.pending_max_frames = static_cast<std::uint16_t>(max_frames);
    }
  }
  return depth;
}

HL_NOINLINE std::uintptr_t sp_past(bool (*inside)(std::uintptr_t ra), std::uint32_t epoch) {
  if (!g_runtime || (tl_bounds.state != 1 && !look_up_bounds())) return 0;
  std::uintptr_t regs[3];
  heapledger_caller_registers(regs);
  if (regs[1] < tl_bounds.lo || regs[1] >= tl_bounds.hi) return 0;
  Cursor c{regs[0], regs[1], regs[2], tl_bounds.hi, static_cast<std::uint64_t>(epoch & 0xFFFF) << 48};
  for (int i = 0; i < 64; ++i) {
    if (!inside(c.ra)) return c.sp;
    StepTrace trace;
    if (c.step(&trace) != Cursor::kStepped) return 0;
  }
  return 0;
}

void remember(std::uint32_t memo) {
  Memo* m = tl_memo_slot.memo;
  MemoEntry* e = m ? m->pending : nullptr;
  if (!e) return;
  e->memo = memo;
  e->max_frames = m->pending_max_frames;
  m->pending = nullptr;
}

std::uintptr_t* frame_buffer() {
  Memo* m = this_thread_memo();
  return m ? m->frames : nullptr;
}

bool thread_ended() { return tl_memo_slot.retired; }

std::uintptr_t* scratch() {
  Memo* m = this_thread_memo();
  return m ? m->scratch : nullptr;
}

void thread_exit() {
  tl_memo_slot.retired = true;
  Memo* m = tl_memo_slot.memo;
  if (!m) return;
  tl_memo_slot.memo = nullptr;
  SpinGuard guard(g_spare_lock);
  m->next_spare = g_spare_memos;
  g_spare_memos = m;
}

void enter_pthread_getattr() { ++tl_in_getattr; }
void leave_pthread_getattr() { --tl_in_getattr; }

void prefork() {
  g_learn_lock.lock();
  g_spare_lock.lock();
}
void postfork() {
  g_spare_lock.unlock();
  g_learn_lock.unlock();
}

}  // namespace heapledger::detail::fast_unwind
