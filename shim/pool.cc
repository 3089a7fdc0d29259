// Slow paths of the pools: the one-time reservation, central per-class lists, carving, thread
// registration and exit, and the large-block path. Fast paths are inline in pool.h.
#include "shim/pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "shim/address_map.h"
#include "shim/os.h"
#include "shim/space_limit.h"
#include "shim/span_cache.h"
#include "shim/spin_lock.h"
#include "shim/system_heap.h"

namespace heapledger::detail::pool {

Region g_region;
constinit thread_local ThreadCache tl_cache HL_TLS;
constinit std::atomic<bool> g_unguarded{false};
constinit std::atomic<bool> g_handlers{false};

namespace {

// ThreadCache::state
constexpr std::uint32_t kUnregistered = 0;
constexpr std::uint32_t kActive = 1;
// The thread has exited (its key destructor ran), or there was no memory for its cache: blocks go
// to and come from the central lists one at a time.
constexpr std::uint32_t kUncached = 2;

constexpr unsigned kMaxShift = 36;  // 64 GiB of address space per class
// 4 MiB per class (160 MiB in all), if address space is limited (ulimit -v); less would leave the
// larger classes, whose first block may lie up to 2 MiB in (class_offset), a handful of blocks.
constexpr unsigned kMinShift = 22;
// How much of a class's region is made usable at a time: 1 MiB, or 64 KiB where usable memory
// is counted whole (a data limit, strict overcommit: os::sparse_mapping_free): there each class in
// use held up to a MiB it did not need, and the exit report, whose allocations touch some thirty
// classes, ran out of the room kept for it under ulimit -d.
constexpr std::size_t kCommitStep = 1 << 20, kFrugalCommitStep = 64 << 10;
std::size_t g_commit_step = kCommitStep;
// A class that has carved kPrefaultAfter bytes of blocks gets the pages of its next fresh blocks
// faulted in os::kPrefaultStep at a time (os::prefault): one system call where the program's first
// writes took a page fault each. Classes used a little never hold more pages than they touch,
// nor do blocks larger than a page (a buffer filled only at its start kept one page of five),
// nor do a thread's first kRampTakes refills of a class (see take_blocks).
constexpr std::size_t kPrefaultAfter = 256 << 10;
// A thread's first refills of a class take 1/8, 1/4, 1/2 of a batch, then whole ones: a thread
// that allocates a few blocks of a class has a few of them, not 32 KiB of fresh blocks with
// their pages faulted in. 1,000 threads allocating 40 blocks each (of 16-1024 bytes) held 300 KB
// a thread pools only, against glibc's 30.
constexpr std::uint8_t kRampTakes = 3;

// Per-class shared state. Threads hand blocks over as arrays of addresses; the free blocks kept
// here are bits in a bitmap with one bit per block, over two more
// levels with a bit per non-zero word of the level below, and leave lowest address first. So the
// blocks a thread gets one after another lie close together, in address order, however scattered
// their frees were: a last-in-first-out list over the whole class hands a program that frees in
// random order its next blocks from anywhere, and the program's own code then runs over memory
// with no locality. Finding the lowest free blocks reads only the bitmaps (a word of the top level
// covers 2^18 blocks); no block's memory is touched.
//
// A class's blocks lie in two parts (see Part in pool.h), its slice of the starter zone first,
// then its range, each with its own bitmaps and carving, under the class's one lock.
struct ClassPart {
  static constexpr int kLevels = 3;
  // level[0] bit n: block n of the part is free here; level[k + 1] bit w: level[k][w] is not zero.
  std::uint64_t* level[kLevels];
  std::size_t level_committed[kLevels];  // words of each made usable so far
  // No bit of the top level is set below this word. None at all until a block is freed here: the
  // top level is not read before then (reading its untouched page maps the zero page, which the
  // first free's write then replaces: a second fault, and a TLB flush, for each class a
  // process uses, which on this VM cost more than the class's own pages; see take_free).
  std::size_t first_top = SIZE_MAX;
  char* bump;         // next never-used block
  char* committed;    // end of usable memory
  char* limit;        // end of this part's address space
  std::size_t bytes;  // of its address space, from its start to limit
  // Where block 0 is, as an offset from the end of the range rather than a pointer to a block (the
  // exit scan leaves this library's data out of its roots; this does not depend on it).
  std::size_t first_block_back;
  char* first_block() const { return limit - first_block_back; }
  // Block numbers [dirty_lo, dirty_hi) hold every block freed here since the pages of the free
  // blocks were last given back (see purge_idle_classes); empty when dirty_lo >= dirty_hi.
  std::size_t dirty_lo = 0;
  std::size_t dirty_hi = 0;
  char* prefaulted = nullptr;  // fresh pages faulted in up to here
};
struct alignas(64) Central {
  SpinLock lock;
  ClassPart parts[kParts] HL_GUARDED_BY(lock);
  std::uint64_t last_take HL_GUARDED_BY(lock) = 0;  // g_committed when a thread last took blocks
  // g_committed when pages were last given back (0: not since the last take), and how many times
  // the class was wanted again too soon after: each doubles how long it must be idle.
  std::uint64_t purged_at HL_GUARDED_BY(lock) = 0;
  unsigned idle_shift HL_GUARDED_BY(lock) = 0;
  ClassPart& range() HL_REQUIRES(lock) { return parts[kRange]; }
  // The part block p (of this class) lies in.
  ClassPart& part_of(const void* p) HL_REQUIRES(lock) {
    return parts[place_of(reinterpret_cast<std::uintptr_t>(p)).part];
  }
};
// Constant-initialised: malloc can run before any constructor of this library.
constinit Central g_central[kNumClasses]{};

// Bytes of block memory every class has made usable so far: the clock by which a class is idle.
// It moves only while the pools grow, so a program at its size never gives back a page.
std::atomic<std::uint64_t> g_committed{0};
// Times the system would not make block memory usable (stats()).
std::atomic<std::size_t> g_refused_commits{0};
// Bytes of free blocks' pages the pools may give back: what they grew by since they last gave
// back, up to kMaxPurgeCredit (see purge_idle_classes). The allocation that grew the pools pays
// for giving pages back (a 1 MiB MADV_DONTNEED: 0.3 ms on this VM, several ms while another
// thread runs, whose TLB is flushed too): a larger credit let one malloc give back 16 MiB.
std::atomic<std::uint64_t> g_purge_credit{0};
constexpr std::uint64_t kMaxPurgeCredit = std::uint64_t{1} << 20;
void add_purge_credit(std::uint64_t bytes) {
  std::uint64_t credit = g_purge_credit.load(std::memory_order_relaxed);
  while (!g_purge_credit.compare_exchange_weak(credit, std::min(kMaxPurgeCredit, credit + bytes),
                                               std::memory_order_relaxed)) {
  }
}

SpinLock g_init_lock;
std::atomic<bool> g_ready{false};
std::atomic<bool> g_no_region{false};  // reserve_region() failed: not tried again
pthread_key_t g_thread_key;

struct LargeBlock {
  std::size_t length;        // bytes mapped, starting at the block
  std::size_t asked;         // the most the program asked of it, rounded up to pages
  std::size_t written = 0;   // what the mapping's earlier owners may have written (Span::written)
  std::uintptr_t held[2]{};  // the quarantine's record while it holds the block; zeros: live
  bool freeing = false;      // free_large is making its pages as new, on their way to the cache
  // os::program_advice_count() when its mapping was as new (handed out fresh or reset): if it is
  // the same at the free, the program gave no advice about its pages (see os.h).
  std::uint64_t advice_at = 0;
};
// The entry of a mapping handed out as new (fresh, or from the cache: written is the span's).
LargeBlock new_block(std::size_t length, std::size_t asked, std::size_t written = 0) {
  LargeBlock b{length, asked, written};
  b.advice_at = os::program_advice_count();
  return b;
}
// How far from its start block b's mapping may not read zero: what its owners asked for, this
// one included (a program writes within what it asked for; past it, the pages were never
// touched).
std::size_t written_part(const LargeBlock& b) { return std::min(b.length, std::max(b.written, b.asked)); }
SpinLock g_large_lock;
AddressMap<LargeBlock> g_large HL_GUARDED_BY(g_large_lock);
std::size_t g_large_live HL_GUARDED_BY(g_large_lock) = 0;
SpanCache g_spans HL_GUARDED_BY(g_large_lock);
// Under tracking: a block's bytes that a kept mapping's last owner wrote are cleared before it is
// handed out (see clear_reused_large).
std::atomic<bool> g_clear_reused{false};

// How many of the central lists' and the large-block registry's locks this thread holds (or is
// about to take). Nonzero on the way in means a signal handler interrupted the thread in there.
constinit thread_local std::uint32_t tl_locks_held HL_TLS = 0;

// Takes a central list's lock or the large-block registry's. Not at all when this thread holds
// it already (see TryGuard: the caller then gives up). And from a signal handler that
// interrupted its thread inside another of them, it only tries for a while: two such handlers
// on two threads, each waiting for the lock the other one's thread holds, waited forever.
// With kOnce it only tries, once.
class PoolGuard {
 public:
  enum Attempt { kWait, kOnce };
  explicit PoolGuard(SpinLock& l, Attempt attempt = kWait) : l_(l) {
    if (l.held_by_this_thread()) return;
    const bool nested = tl_locks_held != 0;
    ++tl_locks_held;  // before the lock: a handler from here on only tries
    std::atomic_signal_fence(std::memory_order_seq_cst);
    held_ = attempt == kOnce ? l.try_lock() : nested ? try_for_a_while(l) : (l.lock(), true);
    if (!held_) --tl_locks_held;
  }
  ~PoolGuard() {
    if (!held_) return;
    l_.unlock();
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --tl_locks_held;
  }
  explicit operator bool() const { return held_; }
  PoolGuard(const PoolGuard&) = delete;
  PoolGuard& operator=(const PoolGuard&) = delete;

 private:
  static bool try_for_a_while(SpinLock& l) {
    for (int i = 0; i < 64; ++i) {
      if (l.try_lock()) return true;
      __builtin_ia32_pause();
    }
    return false;
  }
  SpinLock& l_;
  bool held_ = false;
};

// Takes a bin out of use while its blocks are being handed to the central lists (a flush, or for
// good at thread exit): no room and no blocks, so a signal handler on this thread meanwhile goes
// to the central lists itself and never takes or caches one of them. Returns how many blocks it
// held; the caller puts the bin back (count first, then limit) or leaves it empty.
std::uint32_t detach(Bin& bin) {
  bin.limit = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // One instruction, so a handler's pop cannot land between reading the count and clearing it.
  const std::uint32_t count = __atomic_exchange_n(&bin.count, 0u, __ATOMIC_RELAXED);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return count;
}

// The slots of one thread's bins, every class's in one array. Arrays come from internal memory
// (the exit scan must not take the stale addresses beyond each bin's count for pointers of the
// program's), a few dozen to a mapping, and an exited thread's array goes to the next new thread.
constexpr std::uint32_t bin_limit(unsigned cls) { return 2 * batch_size(cls); }
constexpr std::uint32_t slots_per_thread() {
  std::uint32_t n = 0;
  for (unsigned c = 0; c < kNumClasses; ++c) n += bin_limit(c);
  return n;
}
struct alignas(64) SlotArray {  // whole cache lines: no two threads' arrays share one
  SlotArray* next_spare;
  void* slots[slots_per_thread()];
};
constexpr std::size_t kSlotArraysPerMapping = 32;  // ~700 KiB
SpinLock g_slots_lock;
SlotArray* g_spare_slots HL_GUARDED_BY(g_slots_lock) = nullptr;
char* g_slots_next HL_GUARDED_BY(g_slots_lock) = nullptr;
char* g_slots_end HL_GUARDED_BY(g_slots_lock) = nullptr;

// Null, with *busy set, when a signal handler's allocation interrupted this thread's own first
// registration (which holds the lock): that call goes without a cache, a later one registers.
SlotArray* take_slot_array(bool* busy) {
  TryGuard guard(g_slots_lock);
  *busy = !guard;
  if (!guard) return nullptr;
  if (SlotArray* a = g_spare_slots) {
    g_spare_slots = a->next_spare;
    return a;
  }
  if (static_cast<std::size_t>(g_slots_end - g_slots_next) < sizeof(SlotArray)) {
    const std::size_t bytes = kSlotArraysPerMapping * sizeof(SlotArray);
    auto* m = static_cast<char*>(os::map_internal(bytes));
    if (!m) return nullptr;
    g_slots_next = m;
    g_slots_end = m + bytes;
  }
  auto* a = reinterpret_cast<SlotArray*>(g_slots_next);
  g_slots_next += sizeof(SlotArray);
  return a;
}

void give_slot_array(SlotArray* a) {
  SpinGuard guard(g_slots_lock);
  a->next_spare = g_spare_slots;
  g_spare_slots = a;
}

void thread_exit(void* arg);

// Words of each bitmap level needed for `blocks` blocks.
void level_words(std::size_t blocks, std::size_t out[ClassPart::kLevels]) {
  for (int k = 0; k < ClassPart::kLevels; ++k) out[k] = blocks = (blocks + 63) / 64;
}

std::size_t page_round(std::size_t bytes) { return (bytes + os::kPageSize - 1) & ~(os::kPageSize - 1); }
// The mapping a large block of `size` bytes takes: its pages, and one more where it fills them,
// so that a pointer one past its end (a full buffer's end, a [begin, end) pair) never starts the
// block of a mapping the kernel placed next to it, which the leak scan would count as pointed to
// (a user trial's: of four lost 64 KiB buffers, each next to a kept one's end, up to two were
// called still reachable). Address space only: that page is never written, and the leak scan and
// the quarantine read a block's mapping only as far as it was asked for (written_part).
std::size_t mapping_for(std::size_t size) {
  const std::size_t pages = page_round(size);
  return pages == size ? pages + os::kPageSize : pages;
}
// Addresses rounded to a power of two.
char* round_down(char* p, std::size_t to) {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(to - 1));
}
char* round_up(char* p, std::size_t to) { return round_down(p + (to - 1), to); }

// Bytes of a class's range (2^shift) or of its starter slice.
std::size_t part_bytes(Part part, unsigned shift) {
  return part == kStarter ? kStarterSlice : std::size_t{1} << shift;
}

// Blocks of one part of class cls, with ranges of 2^shift bytes.
std::size_t part_blocks(unsigned cls, Part part, unsigned shift) {
  return (part_bytes(part, shift) - part_offset(cls, part)) / kClassSize[cls];
}

// Bytes of a part's bitmap levels: the ranges' each on pages of their own, the starter parts'
// packed together (a few hundred bytes each).
std::size_t level_bytes(std::size_t words, Part part) {
  return part == kStarter ? words * sizeof(std::uint64_t)
                          : page_round(words * sizeof(std::uint64_t));
}
std::size_t part_bitmap_bytes(Part part, unsigned shift) {
  std::size_t bytes = 0;
  for (unsigned c = 0; c < kNumClasses; ++c) {
    std::size_t words[ClassPart::kLevels];
    level_words(part_blocks(c, part, shift), words);
    for (std::size_t w : words) bytes += level_bytes(w, part);
  }
  return page_round(bytes);
}

// Every class's bitmaps in one mapping (1.7 GiB of address space at the largest shift): the
// starter parts' packed first, then the ranges', each of their levels on pages of its own. They
// cost memory only for blocks in use (at most 1/128 of the blocks' own bytes): pages are written
// only as the class carves blocks. Where a sparse mapping is free (os::sparse_mapping_free) the
// mapping is writable from the start; where not (ulimit -d, strict overcommit) it is a reservation
// made usable a page at a time as a range carves blocks (commit_bitmaps), so that it counts against
// the limits only as far as it is used (the starter parts', 2.5 KiB, at the start). Made usable
// piecemeal everywhere, the bitmaps took three mprotect calls per size class at its first use (60
// of a tracked /bin/true's 460 system calls, 8% of its samples under perf) and left six mappings
// per class behind for fork() and every read of /proc/self/maps.
std::size_t bitmap_bytes(unsigned shift) {
  return part_bitmap_bytes(kStarter, shift) + part_bitmap_bytes(kRange, shift);
}

// Sets up one part of a class, its range or slice from `start`, its bitmaps from *bitmaps on
// (moved past them); `whole`: they are usable already.
void set_up_part(ClassPart& p, unsigned cls, Part part, unsigned shift, char* start, char** bitmaps,
                 bool whole) {
  const std::size_t bytes = part_bytes(part, shift), offset = part_offset(cls, part);
  p.bump = start + offset;
  p.committed = start + offset / os::kPageSize * os::kPageSize;
  p.limit = start + bytes;
  p.bytes = bytes;
  p.first_block_back = static_cast<std::size_t>(p.limit - p.bump);
  std::size_t words[ClassPart::kLevels];
  level_words(part_blocks(cls, part, shift), words);
  for (int k = 0; k < ClassPart::kLevels; ++k) {
    const std::size_t level = level_bytes(words[k], part);
    p.level[k] = reinterpret_cast<std::uint64_t*>(*bitmaps);
    p.level_committed[k] = whole ? level / sizeof(std::uint64_t) : 0;
    *bitmaps += level;
  }
}

// The largest region that fits, but under an address-space limit (ulimit -v) only one that leaves
// the program half of what is left: without that, just above each halving step the pools took
// nearly all of it (python3 could not start a thread under ulimit -v 5300000, where the 5 GiB step
// fitted with 0.1 GB to spare). Where not even the smallest does, there are no pools (see
// system_heap.h): their 2.5 GiB floor took the rest, and the program's first mallocs failed.
bool reserve_region() {
  std::size_t left = os::address_space_left();
  if (left == os::kSpaceUnknown) left = SIZE_MAX;  // no telling: as before, the largest that fits
  const bool sparse = os::sparse_mapping_free();
  for (unsigned shift = kMaxShift; shift >= kMinShift; --shift) {
    const std::size_t ranges = std::size_t{kNumClasses} << shift;
    const std::size_t size = ranges + kStarterZoneBytes;
    std::size_t align = std::size_t{1} << 16;
    if (left != SIZE_MAX && size + align + bitmap_bytes(shift) > left / 2) continue;
    auto* raw = static_cast<char*>(os::reserve(size + align));
    if (!raw) continue;
    auto* bitmaps =
        sparse ? static_cast<char*>(os::map_internal_sparse(bitmap_bytes(shift))) : nullptr;
    const bool whole = bitmaps != nullptr;
    if (!whole) {
      bitmaps = static_cast<char*>(os::reserve_internal(bitmap_bytes(shift)));
      if (bitmaps && !os::commit_internal(bitmaps, part_bitmap_bytes(kStarter, shift))) {
        os::unmap_internal(bitmaps, bitmap_bytes(shift));
        bitmaps = nullptr;
      }
    }
    if (!bitmaps) {
      os::unreserve(raw, size + align);
      continue;
    }
    auto base = (reinterpret_cast<std::uintptr_t>(raw) + align - 1) & ~(align - 1);
    char* const starter = reinterpret_cast<char*>(base + ranges);
    char* starter_bitmaps = bitmaps;
    char* range_bitmaps = bitmaps + part_bitmap_bytes(kStarter, shift);
    for (unsigned c = 0; c < kNumClasses; ++c) {
      Central& central = g_central[c];
      set_up_part(central.parts[kStarter], c, kStarter, shift,
                  starter + (std::size_t{c} << kStarterShift), &starter_bitmaps, true);
      set_up_part(central.parts[kRange], c, kRange, shift,
                  reinterpret_cast<char*>(base + (std::uintptr_t{c} << shift)), &range_bitmaps,
                  whole);
    }
    // The starter zone is made usable whole where that costs nothing (one system call, and one
    // mapping where the slices made usable one by one would leave up to forty); else a slice at a
    // time, as the ranges are.
    if (sparse && os::commit(starter, kStarterZoneBytes)) {
      os::lock_if_future(starter, kStarterZoneBytes);
      for (Central& c : g_central) c.parts[kStarter].committed = c.parts[kStarter].limit;
    }
    g_region = Region{base, size, base + ranges, shift};
    g_commit_step = sparse ? kCommitStep : kFrugalCommitStep;
    return true;
  }
  return false;
}

// Reserving address space and creating the thread key allocate nothing, so the pools are ready
// the first time any entry point is called, before constructors and before dlsym works. The
// choice is made once: with no region, the C library's allocator serves for good from the
// library's constructor on (ready()), and mappings of their own until then (alloc_small_slow).
HL_COLD bool ensure_ready() {
  if (g_ready.load(std::memory_order_acquire)) return true;
  if (g_no_region.load(std::memory_order_acquire)) return false;
  SpinGuard guard(g_init_lock);
  if (g_ready.load(std::memory_order_relaxed)) return true;
  if (g_no_region.load(std::memory_order_relaxed)) return false;
  if (!reserve_region()) {
    g_no_region.store(true, std::memory_order_release);
    return false;
  }
  os::note_sandbox_at_start();
  pthread_key_create(&g_thread_key, thread_exit);
  g_ready.store(true, std::memory_order_release);
  return true;
}

// Not from a signal handler that interrupted its thread's own registration (its bins held): that
// call goes without a cache (a second registration there took a second array and cached blocks in
// it, both leaked when the first one went on: a review's).
void register_thread() {
  if (!enter_bins()) return;
  bool busy = false;
  auto* array = take_slot_array(&busy);
  if (!array) {  // no memory for a cache: the thread works from the central lists
    if (!busy) tl_cache.state = kUncached;
    leave_bins();
    return;
  }
  tl_cache.slot_array = array;
  void** next = array->slots;
  for (unsigned c = 0; c < kNumClasses; ++c) {
    tl_cache.bins[c] = Bin{next, 0, bin_limit(c)};
    next += bin_limit(c);
  }
  tl_cache.state = kActive;
  leave_bins();
  // A non-null value makes the destructor run at thread exit. May allocate (high key numbers);
  // the state is already active, so that re-entry takes the normal path.
  pthread_setspecific(g_thread_key, &tl_cache);
}

// Makes the bitmap words for every block below `end` usable.
bool commit_bitmaps(ClassPart& c, unsigned cls, const char* end) {
  std::size_t words[ClassPart::kLevels];
  level_words(static_cast<std::size_t>(end - c.first_block()) / kClassSize[cls], words);  // whole blocks
  for (int k = 0; k < ClassPart::kLevels; ++k) {
    if (words[k] <= c.level_committed[k]) continue;
    const std::size_t from = c.level_committed[k] * sizeof(std::uint64_t);  // page-aligned
    const std::size_t to = page_round(words[k] * sizeof(std::uint64_t));
    if (!os::commit_internal(reinterpret_cast<char*>(c.level[k]) + from, to - from)) return false;
    c.level_committed[k] = to / sizeof(std::uint64_t);
  }
  return true;
}

// Carves up to `want` fresh blocks into out[]; returns how many. *prefault (if given): pages for
// the caller to fault in once the lock is let go (see kPrefaultAfter), or none. Memory is made
// usable for them only if may_commit; *refused is set when the system would not (a data limit).
std::uint32_t carve(ClassPart& c, unsigned cls, std::uint32_t want, void** out, os::Range* prefault,
                    bool may_commit, bool* refused) {
  std::size_t size = kClassSize[cls];
  // (A class's first block need not start a page: its committed end may lie before it.)
  const char* const usable = may_commit ? c.limit : std::max(c.committed, c.bump);
  std::size_t avail = static_cast<std::size_t>(usable - c.bump) / size;
  if (avail == 0) return 0;
  if (want > avail) want = static_cast<std::uint32_t>(avail);
  char* end = c.bump + want * size;
  if (end > c.committed) {
    std::size_t grow = static_cast<std::size_t>(end - c.committed);
    grow = (grow + g_commit_step - 1) / g_commit_step * g_commit_step;
    if (grow > static_cast<std::size_t>(c.limit - c.committed))
      grow = static_cast<std::size_t>(c.limit - c.committed);
    // The bitmaps first: if they cannot be had (a data limit), no block memory is left charged.
    if (!commit_bitmaps(c, cls, c.committed + grow) || !os::commit(c.committed, grow)) {
      g_refused_commits.fetch_add(1, std::memory_order_relaxed);
      *refused = true;
      return 0;
    }
    os::lock_if_future(c.committed, grow);
    c.committed += grow;
    g_committed.fetch_add(grow, std::memory_order_relaxed);
    add_purge_credit(grow);
  }
  char* first = c.bump;
  for (std::uint32_t i = 0; i < want; ++i) out[want - 1 - i] = first + i * size;  // lowest out first
  c.bump = end;
  if (prefault && size <= os::kPageSize && end > c.prefaulted &&
      static_cast<std::size_t>(end - c.first_block()) > kPrefaultAfter) {
    // Pages below the old bump are in use (present already, or given back by a purge: left so),
    // and so is the one it lies in: the range starts at no block carved before (its address, an
    // argument of the call, stays in a register while the kernel works; see kernel_call.h).
    char* from = std::max(c.prefaulted, round_up(first, os::kPageSize));
    char* to = std::min(round_up(end, os::kPrefaultStep), c.committed);
    c.prefaulted = to;
    if (to > from) *prefault = os::Range{from, static_cast<std::size_t>(to - from)};
  }
  return want;
}

constexpr std::uint64_t bit(std::size_t n) { return std::uint64_t{1} << (n % 64); }

// Marks block p free. Anything but a block start the class has carved is left alone (a free of
// an interior pointer, when nothing checked it before), as is a block already marked (a double
// free that got this far).
void push_one(Central& central, unsigned cls, void* p) HL_REQUIRES(central.lock) {
  ClassPart& c = central.part_of(p);
  char* const first = c.first_block();
  const auto rel = static_cast<std::uint64_t>(static_cast<char*>(p) - first);
  const std::uint64_t n = block_number(rel, cls);
  if (static_cast<char*>(p) < first || p >= c.bump || n * kClassSize[cls] != rel) return;
  if (c.dirty_lo >= c.dirty_hi) {
    c.dirty_lo = n;
    c.dirty_hi = n + 1;
  } else {
    c.dirty_lo = std::min<std::size_t>(c.dirty_lo, n);
    c.dirty_hi = std::max<std::size_t>(c.dirty_hi, n + 1);
  }
  std::size_t index = n;
  for (int k = 0; k < ClassPart::kLevels; ++k, index /= 64) c.level[k][index / 64] |= bit(index);
  if (index < c.first_top) c.first_top = index;  // index: the top-level word
}

// Up to `want` free blocks, lowest address first, into out[] (the lowest last, to go out first).
std::uint32_t take_free(ClassPart& c, unsigned cls, std::uint32_t want, void** out) {
  const std::size_t size = kClassSize[cls];
  char* const first = c.first_block();
  std::size_t words[ClassPart::kLevels];
  level_words(static_cast<std::size_t>(c.bump - first) / size, words);  // carved blocks only
  std::uint64_t* const top = c.level[2];
  std::uint64_t* const mid = c.level[1];
  std::uint64_t* const low = c.level[0];
  void* found[64];
  std::uint32_t got = 0;
  for (std::size_t t = c.first_top; t < words[2] && got < want;) {
    const std::uint64_t top_bits = top[t];
    if (!top_bits) {
      c.first_top = ++t;
      continue;
    }
    const std::size_t m = t * 64 + static_cast<unsigned>(__builtin_ctzll(top_bits));
    const std::uint64_t mid_bits = mid[m];
    if (mid_bits) {
      const std::size_t w = m * 64 + static_cast<unsigned>(__builtin_ctzll(mid_bits));
      std::uint64_t bits = low[w];
      for (; bits && got < want; ++got) {
        found[got] = first + (w * 64 + static_cast<unsigned>(__builtin_ctzll(bits))) * size;
        bits &= bits - 1;
      }
      low[w] = bits;
      if (bits) break;  // want reached
    }
    // Word w of the lowest level is empty now: so say the levels above.
    const std::uint64_t mid_left = mid_bits & (mid_bits - 1);
    mid[m] = mid_left;
    if (!mid_left) top[t] = top_bits & (top_bits - 1);
  }
  for (std::uint32_t i = 0; i < got; ++i) out[got - 1 - i] = found[i];
  return got;
}

// The first block number at or after n, and before end, whose bit in `low` is `set`; end if none.
std::size_t next_with(const std::uint64_t* low, std::size_t n, std::size_t end, bool set) {
  while (n < end) {
    std::uint64_t word = low[n / 64];
    if (!set) word = ~word;
    word &= ~std::uint64_t{0} << (n % 64);
    if (word) return std::min(end, n / 64 * 64 + static_cast<unsigned>(__builtin_ctzll(word)));
    n = (n / 64 + 1) * 64;
  }
  return end;
}

char* page_down(char* p) {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(os::kPageSize - 1));
}

// Gives back the pages that only free blocks of this class's lists lie on, among those freed here
// since the last time, up to `budget` bytes; returns how many it gave back. A block in a thread's
// cache counts as in use, as does memory not carved yet: only a page wholly inside one run of
// free blocks goes. What the budget leaves stays to do.
std::uint64_t purge(ClassPart& c, unsigned cls, std::uint64_t budget) {
  const std::size_t size = kClassSize[cls];
  char* const first = c.first_block();
  const std::size_t carved = static_cast<std::size_t>(c.bump - first) / size;
  const std::uint64_t* const low = c.level[0];
  const std::size_t hi = std::min(c.dirty_hi, carved);
  std::size_t n = std::min(c.dirty_lo, hi);
  std::uint64_t given = 0;
  while ((n = next_with(low, n, hi, true)) < hi) {
    // The run of free blocks around n, as far as it shares pages with the blocks freed since the
    // last time (past that, its pages were given back then, or are still in use).
    std::size_t start = n;
    const std::size_t reach_back =
        static_cast<std::size_t>(std::max(page_down(first + start * size), first) - first) / size;
    while (start > reach_back && (low[(start - 1) / 64] & bit(start - 1))) --start;
    const std::size_t end = next_with(low, n, carved, false);
    char* const from = page_down(first + start * size + os::kPageSize - 1);
    char* to = std::min(page_down(first + end * size),
                        page_down(first + std::min(end, hi) * size + os::kPageSize - 1));
    if (from < to) {
      if (static_cast<std::uint64_t>(to - from) > budget - given) to = from + (budget - given);
      os::discard(from, static_cast<std::size_t>(to - from));
      given += static_cast<std::uint64_t>(to - from);
      if (given == budget) {  // the rest from the block `to` lies in
        n = static_cast<std::size_t>(to - first) / size;
        break;
      }
    }
    n = end;
  }
  if (n < hi) {
    c.dirty_lo = n;
  } else {
    c.dirty_lo = c.dirty_hi = 0;
  }
  return given;
}

// Whether no block was freed in part p since its pages were last given back.
bool clean(const ClassPart& p) { return p.dirty_lo >= p.dirty_hi; }

// Memory part p has made usable.
std::uint64_t part_committed(const ClassPart& p) {
  return static_cast<std::uint64_t>(p.committed - (p.limit - p.bytes));
}

// How far the pools must grow while class c takes nothing for it to count as idle: a quarter of
// its range's memory, 8 MiB at least, doubled for each time it was wanted again too soon after.
std::uint64_t idle_after(Central& c) HL_REQUIRES(c.lock) {
  return std::max<std::uint64_t>(std::uint64_t{8} << 20, part_committed(c.range()) / 4)
         << c.idle_shift;
}

// Run after the pools grew. A class's blocks serve that class alone, so a class the program has
// left kept what it was given back: a program whose blocks keep growing (a string rebuilt longer
// each time) moves through the classes, and under the quarantine each class got its blocks back
// only once the program had left it (grow_blocks peaked at 171 MB against 1.6 MB plain). So a
// class that has handed out no block while the others made a quarter of its memory usable (8 MiB
// at least) gives back the pages of the blocks it holds free, the longest idle first, but no
// more than the pools grew by: a class used again faults its pages back in, and in all that
// costs at most the faults growing cost. A class whose lists are busy is not idle.
void purge_idle_classes() {
  struct Idle {
    std::uint64_t since;
    unsigned cls;
  };
  Idle idle[kNumClasses];
  unsigned count = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    Central& c = g_central[cls];
    PoolGuard guard(c.lock, PoolGuard::kOnce);
    if (!guard || (clean(c.parts[kStarter]) && clean(c.range()))) continue;
    const std::uint64_t now =
        g_committed.load(std::memory_order_relaxed);  // not before: taken since
    if (now >= c.last_take && now - c.last_take >= idle_after(c))
      idle[count++] = {c.last_take, cls};
  }
  if (count == 0) return;
  std::uint64_t budget = g_purge_credit.exchange(0, std::memory_order_relaxed);
  std::sort(idle, idle + count, [](const Idle& a, const Idle& b) { return a.since < b.since; });
  for (unsigned i = 0; i < count && budget > 0; ++i) {
    Central& c = g_central[idle[i].cls];
    PoolGuard guard(c.lock, PoolGuard::kOnce);
    if (!guard || c.last_take != idle[i].since) continue;
    std::uint64_t given = purge(c.parts[kStarter], idle[i].cls, budget);
    if (given < budget) given += purge(c.range(), idle[i].cls, budget - given);
    budget -= given;
    if (given)  // (a class whose free blocks share every page with blocks in use gave nothing)
      c.purged_at = std::max<std::uint64_t>(1, g_committed.load(std::memory_order_relaxed));
  }
  if (budget) add_purge_credit(budget);
}

// Fills out[] for class `cls` from the central lists (or fresh memory, if may_commit or made
// usable already); returns how many. busy: the lists were held (by a signal handler's own thread,
// or too long), not used up. refused: the system would not make memory usable for more.
// takes: how many times the thread took blocks of this class before (see kRampTakes); one: the
// caller can cache none of them.
std::uint32_t take_blocks(unsigned cls, void** out, bool* busy, bool* refused, bool may_commit,
                          std::uint8_t takes, bool one) {
  const std::uint32_t batch = batch_size(cls);
  const std::uint32_t want = one ? 1
                             : takes >= kRampTakes
                                 ? batch
                                 : std::max<std::uint32_t>(std::min<std::uint32_t>(2, batch),
                                                           batch >> (kRampTakes - takes));
  Central& c = g_central[cls];
  std::uint32_t n = 0;
  bool grew = false;
  os::Range prefault{nullptr, 0};
  {
    PoolGuard guard(c.lock);
    *busy = !guard;
    if (!guard) return 0;
    c.last_take = g_committed.load(std::memory_order_relaxed);
    if (c.purged_at) {  // wanted again: too soon if the pools grew less than its idle time since
      if (c.last_take - c.purged_at < idle_after(c) && c.idle_shift < 8) ++c.idle_shift;
      c.purged_at = 0;
    }
    // Free blocks first, the starter slice's before the range's; then fresh ones, likewise.
    ClassPart& starter = c.parts[kStarter];
    ClassPart& range = c.range();
    n = take_free(starter, cls, want, out);
    if (!n) n = take_free(range, cls, want, out);
    if (!n) {
      const std::uint64_t committed = part_committed(starter) + part_committed(range);
      // The range is not passed over for the slice's refusal alone: *refused may be set already,
      // by a smaller class this allocation tried first, and the range may have blocks usable.
      bool slice_refused = false;
      n = carve(starter, cls, want, out, nullptr, may_commit, &slice_refused);
      if (!n && !slice_refused)
        n = carve(range, cls, want, out, takes >= kRampTakes ? &prefault : nullptr, may_commit,
                  refused);
      *refused |= slice_refused;
      grew = part_committed(starter) + part_committed(range) != committed;
    }
  }
  if (prefault.bytes) os::prefault(prefault.start, prefault.bytes);
  if (grew) purge_idle_classes();
  return n;
}

// Thread exit: every cached block goes back to the central lists for other threads to reuse.
// The thread is uncached first, and each bin is emptied before its blocks are handed back: a
// signal handler's malloc or free meanwhile (or a later TLS destructor's) works with the central
// lists, and never takes or caches a block that is on its way there.
void thread_exit(void*) {
  tl_cache.state = kUncached;
  // Not enter_bins(): a handler that ended the thread from inside its bins left that set.
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    Bin& bin = tl_cache.bins[cls];
    void** const slots = bin.slots;
    const std::uint32_t count = detach(bin);
    bin.slots = nullptr;
    Central& c = g_central[cls];
    PoolGuard guard(c.lock);  // held by this thread only if a handler exits the thread from inside
    if (!guard) continue;     // the lists: then its blocks are leaked
    for (std::uint32_t i = 0; i < count; ++i) push_one(c, cls, slots[i]);
  }
  give_slot_array(static_cast<SlotArray*>(tl_cache.slot_array));
  tl_cache.slot_array = nullptr;
}

// Puts blocks[0..n) in the thread's bin for class cls as far as it has room, the rest back to
// the central lists. None in a signal handler that interrupted its thread inside its bins.
void cache_or_return(unsigned cls, void* const* blocks, std::uint32_t n) {
  std::uint32_t kept = 0;
  if (enter_bins()) {
    Bin& bin = tl_cache.bins[cls];
    const std::uint32_t count = bin.count;
    kept = tl_cache.state == kActive ? std::min(n, bin.limit - count) : 0;
    for (std::uint32_t i = 0; i < kept; ++i) bin.slots[count + i] = blocks[i];
    bin.count = count + kept;
    leave_bins();
  }
  if (kept == n) return;
  Central& c = g_central[cls];
  PoolGuard guard(c.lock);
  if (!guard) return;  // a handler's allocation inside this class's lists: leaked
  for (std::uint32_t i = kept; i < n; ++i) push_one(c, cls, blocks[i]);
}

}  // namespace

// Blocks come from class cls's lists, or, when those give none, from the next class up whose
// blocks keep cls's promises (size, and alignment: a multiple of the largest power of two
// dividing cls's size), and past the last class from a mapping of their own. Giving none means
// a signal handler interrupted this thread inside them (refilling or flushing that class, say),
// or another thread's handler holds them while waiting for one this thread holds; or the class's
// address space (64 GiB, as little as 4 MiB under ulimit -v) is used up. Failing there ended the
// program when the allocation was glibc's own (the dynamic TLS of a thread's first handler:
// "cannot allocate memory for thread-local data: ABORT"). Untracked, the C library's allocator,
// started for the purpose (spill_to_system), serves a used-up class's blocks instead of the
// larger classes: a 16-byte block in a larger class's slot wastes the rest.
void* alloc_small_slow(unsigned cls, std::size_t size, std::size_t asked_align) {
  // No region: the C library's allocator serves what was asked (alloc_large), or a mapping
  // while it is found.
  if (HL_UNLIKELY(!ensure_ready())) return alloc_large(size, asked_align);
  const std::uint32_t align = kClassSize[cls] & (~kClassSize[cls] + 1);
  if (tl_cache.state == kUnregistered) register_thread();
  // A signal handler inside its thread's bins, or a thread whose handler left them for good
  // (longjmp), caches nothing: one block, not a batch to hand back.
  const bool one = tl_cache.in_bins || tl_cache.state != kActive;
  void* got[64];
  // Once the system refuses memory (a data limit), the larger classes give what they have free or
  // made usable, and are not asked for more: each would be refused too (a program that kept
  // trying under a limit made some 28 failing calls to the kernel for each malloc, against
  // glibc's 2: 10 million failures took minutes).
  bool refused = false;
  for (unsigned from = cls; from < kNumClasses; ++from) {
    if (kClassSize[from] % align != 0) continue;
    bool busy = false;
    std::uint8_t& takes = tl_cache.takes[from];
    if (const std::uint32_t n = take_blocks(from, got, &busy, &refused, !refused, takes, one)) {
      if (takes < kRampTakes && !one) ++takes;
      cache_or_return(from, got, n - 1);
      return got[n - 1];
    }
    // Used up, where the C library's allocator serves: it, rather than a larger class. Not when
    // the lists are busy: a signal handler gets its block from a larger class, without a lock a
    // handler of its own might hold (glibc's, inside a malloc it interrupted: two threads hung).
    if (from == cls && !busy && system_heap::on())
      return system_heap::alloc(size, asked_align, false);
  }
  // Here the class's lists were busy (or no C library's allocator serves): a mapping, which a
  // signal handler can have without a lock its own thread might hold.
  return alloc_large(kClassSize[cls], align);
}

bool ready() {
  if (ensure_ready()) return true;
  system_heap::start();
  return false;
}

void spill_to_system() { system_heap::start(); }

void free_small_slow(void* p, unsigned cls) {
  if (tl_cache.state == kUnregistered) register_thread();
  Bin& bin = tl_cache.bins[cls];
  Central& c = g_central[cls];
  // Uncached, or a signal handler inside its thread's bins (a flush's, say): straight to the lists.
  if (tl_cache.state != kActive || bin.limit == 0 || !enter_bins()) {
    PoolGuard guard(c.lock);
    if (guard) push_one(c, cls, p);
    return;
  }
  if (bin.count < bin.limit) {  // registered just now (its first free), or a handler made room
    bin.slots[bin.count++] = p;
    leave_bins();
    return;
  }
  // Full: p and the most recently freed blocks, batch_size in all, go to the central lists. The
  // bin is out of use meanwhile (no room, no blocks), and the other bins in use: a signal handler
  // here caches as ever in other classes, where with every bin held it went to their lists too,
  // and its blocks were leaked when it could not have their locks at once (a review's).
  const std::uint32_t limit = bin.limit;
  const std::uint32_t count = detach(bin);
  leave_bins();
  const std::uint32_t n = std::min(batch_size(cls) - 1, count);
  std::uint32_t keep = count;
  {
    PoolGuard guard(c.lock);
    if (guard) {  // else a handler's free on a thread inside this class's lists: p is leaked
      keep = count - n;
      push_one(c, cls, p);
      for (std::uint32_t i = 0; i < n; ++i) push_one(c, cls, bin.slots[keep + i]);
    }
  }
  bin.count = keep;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // its blocks count before it has room
  bin.limit = limit;
}

namespace {
// Freed large mappings the pools keep (the cache's, and those the quarantine holds) are
// heapledger's, not the program's, under a limit the program set for itself (space_limit.h):
// its own mmap failed while the quarantine held a block it had freed (a review's). What that
// amount did, once the mappings are where the change puts them.
void note_kept(std::size_t before, std::size_t after) {
  if (after > before) space_limit::grow(after - before, after - before);
  if (before > after) space_limit::shrink(before - after, before - after);
}

void unmap_spans(const Span* spans, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    os::unmap(reinterpret_cast<void*>(spans[i].start), spans[i].length);
}

// Out of address space or commit (ulimit -v, overcommit_memory=2): every kept mapping goes back
// to the OS. False if there was none.
bool give_back_kept() {
  Span spans[SpanCache::kEntries];
  std::size_t n = 0, kept = 0;
  {
    PoolGuard guard(g_large_lock);
    if (!guard) return false;
    kept = g_spans.bytes();
    n = g_spans.take_all(spans);
  }
  unmap_spans(spans, n);
  note_kept(kept, 0);
  return n != 0;
}

// Clears [p, p+length) of a kept mapping (never more than SpanCache::kMaxSpan: only spans the
// cache kept, and what their owners asked for, get here). Pages in memory are written over,
// being there and about to be used: giving them back past 1 MiB instead, as before, made every
// page fault in again at the next use (15-40 us each on this VM): `calloc_churn 2097152 1000`
// took 5.4 s against glibc's 0.04 s. Pages not in memory were never touched (or are in swap) and
// are only given back, which costs nothing where there is nothing: writing over them faulted in
// the whole of every block its owners asked for and barely touched (30,000 blocks of 200 KB, one
// byte written in each, a third freed and asked again: 10.5 s and 2.0 GB under tracking against
// glibc's 0.7 s and 122 MB, a user trial). Either is cheaper than a fresh mapping, whose making
// also evicts a kept mapping the OS must then take back (see alloc_large). Asking which pages
// are in memory is a system call (2 us here: a 64 KiB buffer filled each round, `large_churn
// 65536 100000 1`, went from 3.6 to 5.5 us a round): a program whose reused pages were all in
// memory is asked again only after 1, 2, 4, ... up to 64 clears, and at every clear again once
// one was not (g_probe_*: a guess shared by all threads, races harmless).
std::atomic<std::uint32_t> g_probe_skip{0};   // clears left before the next question
std::atomic<std::uint32_t> g_probe_level{0};  // how many questions in a row found every page

void clear_reused(void* p, std::size_t length) {
  char* at = static_cast<char*>(p);
  char* const end = at + length;
  char* const first = std::min(round_up(at, os::kPageSize), end);
  char* const last = std::max(round_down(end, os::kPageSize), first);
  std::memset(at, 0, static_cast<std::size_t>(first - at));  // part pages at either end
  std::memset(last, 0, static_cast<std::size_t>(end - last));
  if (const std::uint32_t skip = g_probe_skip.load(std::memory_order_relaxed); skip != 0) {
    g_probe_skip.store(skip - 1, std::memory_order_relaxed);
    std::memset(first, 0, static_cast<std::size_t>(last - first));
    return;
  }
  constexpr std::size_t kPagesAtOnce = 256;
  unsigned char pages[kPagesAtOnce];
  bool all_present = true;
  for (at = first; at < last;) {
    const std::size_t n =
        std::min<std::size_t>(static_cast<std::size_t>(last - at) / os::kPageSize, kPagesAtOnce);
    if (!os::in_memory(at, n * os::kPageSize, pages)) {
      std::memset(at, 0, n * os::kPageSize);
      at += n * os::kPageSize;
      continue;
    }
    for (std::size_t i = 0; i < n;) {
      const bool present = pages[i] & 1;
      std::size_t j = i + 1;
      while (j < n && (pages[j] & 1) == present) ++j;
      char* const run = at + i * os::kPageSize;
      const std::size_t bytes = (j - i) * os::kPageSize;
      if (present || !os::discard(run, bytes)) std::memset(run, 0, bytes);
      all_present = all_present && present;
      i = j;
    }
    at += n * os::kPageSize;
  }
  const std::uint32_t level =
      all_present ? std::min<std::uint32_t>(g_probe_level.load(std::memory_order_relaxed) + 1, 7)
                  : 0;
  g_probe_level.store(level, std::memory_order_relaxed);
  g_probe_skip.store(level ? (1u << (level - 1)) - 1 : 0, std::memory_order_relaxed);
}

// A fresh mapping for a request of `length` bytes whose program is growing its large requests
// past the mappings it freed (the cache holds a shorter one: SpanCache::holds_shorter) is made
// kHeadroom times as long, so that freed, it serves the larger requests that follow instead of
// being given back. Both ends are dear: a new mapping's pages fault in one by one, and taking
// back a mapping whose pages were touched flushes each of them from the TLB (on this VM, up to
// 33 pages, ~50 us a page: a 64 KiB munmap took 0.3-1 ms). Under tracking the quarantine holds
// hundreds of freed blocks, so when a growing request outgrew them every allocation was a fresh
// mapping and every release evicted one (`large_grow 40000 90000 20000`: 3,312 munmaps). The
// headroom is address space only: pages never touched cost no memory, and the leak scan and the
// quarantine count only the written part (written_part).
constexpr std::size_t kHeadroom = 4;
constexpr std::size_t kMaxHeadroomRequest = std::size_t{256} << 10;
}  // namespace

void clear_reused_large() { g_clear_reused.store(true, std::memory_order_relaxed); }

// A kept mapping serves the request if one fits (see SpanCache), else a new one. A zeroed block
// (calloc's) that takes a kept mapping gets the part its earlier owners wrote cleared (see
// clear_reused), as glibc clears a reused chunk: a fresh mapping for every calloc faulted in
// every page again (`calloc_churn 1048576 5000` took 22.8 s against glibc's 0.06 s).
namespace {
// A kept mapping for a block of `length` bytes (a multiple of the page), at least `span` long,
// registered as the program's, if the cache has one that fits; its bytes from `keep` on that an
// earlier owner may have written are cleared where they must be (zeroed, or under tracking: see
// clear_reused_large). *room: whether a new mapping should have room to grow (see
// alloc_large).
void* take_kept(std::size_t length, std::size_t span, std::size_t keep, bool zeroed,
                bool* room = nullptr) {
  Span s;
  {
    PoolGuard guard(g_large_lock);
    s = guard ? g_spans.take(span) : Span{};
    if (s.start != 0) note_kept(s.length, 0);  // the program's now
    if (s.start != 0 && !g_large.insert(s.start, new_block(s.length, length, s.written))) {
      os::unmap(reinterpret_cast<void*>(s.start), s.length);  // the registry is full
      s = Span{};
    }
    if (s.start != 0) g_large_live += s.length;
    if (room)
      *room = s.start == 0 && guard && length <= kMaxHeadroomRequest && g_spans.holds_shorter(span);
  }
  if (s.start == 0) return nullptr;
  const std::size_t dirty = std::min(length, s.written);
  if (dirty > keep && (zeroed || g_clear_reused.load(std::memory_order_relaxed)))
    clear_reused(reinterpret_cast<char*>(s.start) + keep, dirty - keep);
  return reinterpret_cast<void*>(s.start);
}
}  // namespace

void* alloc_large(std::size_t size, std::size_t align, bool zeroed) {
  if (size > kMaxRequest) return nullptr;
  if (HL_UNLIKELY(g_no_region.load(std::memory_order_relaxed)) && system_heap::on())
    return system_heap::alloc(size, align, zeroed);
  std::size_t length = page_round(size);
  if (length == 0) length = os::kPageSize;
  const std::size_t fitted = mapping_for(size);
  std::size_t map_length = fitted;
  if (align <= os::kPageSize) {
    bool room = false;
    if (void* kept = take_kept(length, fitted, 0, zeroed, &room)) return kept;
    if (room) map_length = length * kHeadroom;
  }
  const auto map = [align](std::size_t bytes) {
    return align > os::kPageSize ? os::map_aligned(bytes, align) : os::map(bytes);
  };
  void* p = map(map_length);
  if (!p && map_length != fitted) p = map(map_length = fitted);  // no room for the headroom
  if (!p && give_back_kept()) p = map(map_length = fitted);
  if (!p) return nullptr;
  PoolGuard guard(g_large_lock);
  if (!guard || !g_large.insert(reinterpret_cast<std::uintptr_t>(p), new_block(map_length, length))) {
    os::unmap(p, map_length);
    return nullptr;
  }
  g_large_live += map_length;
  return p;
}

namespace {
// Not a block of the pools: the C library's, where it serves (see system_heap.h), freed outside
// the registry's lock (its free may call into this library: madvise); else not ours (false).
bool free_foreign(void* p) {
  if (!system_heap::served()) return false;
  system_heap::release(p);
  return true;
}

// Where the C library's allocator serves, a pointer that does not start a page is one of its
// blocks (every large block of ours is a mapping): no need to look in the registry, under its
// lock, on every free.
bool off_page_system_block(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & (os::kPageSize - 1)) != 0 && system_heap::served();
}
}  // namespace

bool system_block(const void* p) {
  if (small_class_of(p) >= 0 || !system_heap::served()) return false;
  if (off_page_system_block(p)) return true;
  PoolGuard guard(g_large_lock);
  return guard && g_large.find(reinterpret_cast<std::uintptr_t>(p)) == nullptr;
}

// A freed mapping goes to the cache as the program got it, whatever it made of its pages (a
// guard page at its end, say: see os::reset_for_reuse), or else back to the OS. The block stays
// in the registry, marked, while its pages are reset (system calls, outside the lock): a thread
// the exit scan stops in between leaves it where the scan finds it, and skips.
bool free_large(void* p) {
  if (off_page_system_block(p)) return free_foreign(p);
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::size_t length = 0;  // stays 0 if the registry has no such block
  std::size_t written = 0;
  bool as_new = false, held = false;
  {
    PoolGuard guard(g_large_lock);
    if (!guard) return true;  // ours, but the registry is mid-update: leaked (see TryGuard)
    if (LargeBlock* block = g_large.find(addr)) {
      if (block->freeing) return true;  // a second free racing the first (track=0): nothing to do
      block->freeing = true;
      length = block->length;
      written = written_part(*block);
      as_new = block->advice_at == os::program_advice_count();
      held = block->held[0] != 0;  // the quarantine gives it back
    }
  }
  if (length == 0) return free_foreign(p);
  const bool keep = length <= SpanCache::kMaxSpan &&
                    (as_new ? os::reset_protection(p, length) : os::reset_for_reuse(p, length));
  Span unmap[SpanCache::kEntries + 1]{{addr, length, written}};
  std::size_t n = 1, kept_before = 0, kept_after = 0;
  {
    PoolGuard guard(g_large_lock);
    if (!guard) return true;  // a handler's free inside the registry: leaked, still marked
    LargeBlock gone;
    if (!g_large.erase(addr, &gone))
      return true;  // a realloc racing this free took it (the program's bug)
    g_large_live -= length;
    kept_before = g_spans.bytes() + (held ? length : 0);
    if (keep) n = g_spans.put(unmap[0], unmap);
    kept_after = g_spans.bytes();
  }
  unmap_spans(unmap, n);
  note_kept(kept_before, kept_after);
  return true;
}

std::size_t large_usable_size(const void* p) {
  if (off_page_system_block(p)) return system_heap::usable_size(const_cast<void*>(p));
  {
    PoolGuard guard(g_large_lock);
    if (!guard) return 0;
    // Not the mapping: one taken from the cache can be 8x that.
    if (LargeBlock* block = g_large.find(reinterpret_cast<std::uintptr_t>(p))) return block->asked;
  }
  return system_heap::served() ? system_heap::usable_size(const_cast<void*>(p)) : 0;
}

// A block grows in place while its mapping has room (one from the cache may have more than was
// asked), else it is remapped to at least a quarter more than it had, not to the page it asked
// for: programs grow buffers by small steps (python3's lists and string builders by an eighth,
// one page at a time near 32 KiB), and each step would be a system call. The slack is address
// space only until the program writes into it. A block that shrinks by less than a quarter of
// the most it asked for stays as it is (python3 trims its string builders, then grows them
// again); by more, it gives back its tail.
void* realloc_large(void* p, std::size_t size, bool* no_room) {
  if (no_room) *no_room = false;
  std::size_t length = page_round(size);
  if (size > kMaxRequest || length == 0) return nullptr;
  const std::size_t fitted = mapping_for(size);
  LargeBlock old;
  bool found = false;
  {
    PoolGuard guard(g_large_lock);
    if (!guard) return nullptr;
    found = g_large.erase(reinterpret_cast<std::uintptr_t>(p), &old);
    if (found && old.freeing) {  // a free of it is under way (a race in the program): leave it
      g_large.insert(reinterpret_cast<std::uintptr_t>(p), old);
      return nullptr;
    }
  }
  if (!found) return system_heap::served() ? system_heap::realloc(p, size) : nullptr;  // not ours
  // Growing out of its mapping, into a kept one with a quarter more room at least (as a remap
  // gives: each step copies, but a buffer that grows by steps then copies what it ends with about
  // four times in all), and the old mapping is kept in turn. A buffer that grows by steps and
  // is then freed, over and over (python3's json.dumps of a large dict, from 29 KB to 351 KB),
  // otherwise had fresh pages faulted in for every step past its first mapping each time,
  // however many mappings it had freed: `tests/bench/realloc_grow 1000 260000` took 4.1 s
  // pools only against glibc's 0.02 s (a user trial's program). Not when anything in the process
  // gave advice about pages (or locked them) since the block was handed out: a remap carries
  // that along, a copy would not (a guard page faulted the copy; locked secrets went on in pages
  // that can be swapped out). Not under tracking: there the old block must go to the quarantine,
  // which realloc does itself when grows_into_kept says so.
  if (fitted > old.length && !g_clear_reused.load(std::memory_order_relaxed) &&
      old.advice_at == os::program_advice_count()) {
    const std::size_t span = std::max(fitted, page_round(old.length + old.length / 4));
    if (void* kept = take_kept(length, span, old.asked, false)) {
      std::memcpy(kept, p, old.asked);
      bool back = false;
      {
        PoolGuard guard(g_large_lock);
        back = guard && g_large.insert(reinterpret_cast<std::uintptr_t>(p), old);
        if (!back) g_large_live -= old.length;
      }
      if (back) {
        free_large(p);  // kept for reuse, or given back
      } else {          // no room in the registry to pass it through the cache: given back
        os::unmap(p, old.length);
      }
      return kept;
    }
  }
  void* q = p;
  std::size_t mapped = old.length;
  if (fitted > old.length) {
    const std::size_t grown = page_round(old.length + old.length / 4);
    if (grown >= fitted && (q = os::remap(p, old.length, grown)) != nullptr) {
      mapped = grown;
    } else {  // the size it needs, also when the address space had no room for the slack
      q = os::remap(p, old.length, fitted, no_room);
      mapped = fitted;
    }
  } else if (length < old.asked - old.asked / 4) {
    q = os::remap(p, old.length, fitted, no_room);
    mapped = fitted;
  }
  // Growing past what it asked for into its own mapping: past old.asked lies what the mapping's
  // last owner left (a kept mapping's), or zeros. Whole pages, as a block that takes a kept
  // mapping gets them (its size in pages is what the scan reads).
  const std::size_t dirty = std::min({length, old.length, old.written});
  if (q && dirty > old.asked && g_clear_reused.load(std::memory_order_relaxed))
    clear_reused(static_cast<char*>(q) + old.asked, dirty - old.asked);
  SpinGuard guard(g_large_lock);
  if (!q) {  // the old mapping is intact: put it back
    g_large.insert(reinterpret_cast<std::uintptr_t>(p), old);
    return nullptr;
  }
  const std::size_t asked = mapped == old.length ? std::max(old.asked, length) : length;
  LargeBlock moved{mapped, asked, std::min(old.written, mapped)};
  moved.advice_at = old.advice_at;  // the same pages, moved or grown: what was done to them stays
  g_large.insert(reinterpret_cast<std::uintptr_t>(q), moved);
  g_large_live += mapped - old.length;
  return q;
}

namespace {
// The start of the slot of small class cls that addr falls in, if that slot has been carved
// (handed out at least once); else 0.
std::uintptr_t carved_slot(std::uintptr_t addr, unsigned cls) {
  const Part part = place_of(addr).part;
  const std::uintptr_t start = first_block(cls, part);
  if (addr < start || addr >= carved_end(cls, part)) return 0;
  return addr - (addr - start) % kClassSize[cls];
}
// Whether p is the start of a block slot of small class cls carved at least once.
bool small_block_start(const void* p, unsigned cls) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return carved_slot(addr, cls) == addr;
}
}  // namespace

bool grows_into_kept(const void* p, std::size_t size) {
  const std::size_t fitted = mapping_for(size);
  if (size > kMaxRequest || size == 0) return false;
  PoolGuard guard(g_large_lock);
  if (!guard) return false;
  const LargeBlock* block = g_large.find(reinterpret_cast<std::uintptr_t>(p));
  return block && !block->freeing && fitted > block->length &&
         block->advice_at == os::program_advice_count() && g_spans.fits(fitted);
}

bool owns_block_start(const void* p) {
  int cls = small_class_of(p);
  if (cls < 0) return large_usable_size(p) != 0;
  return small_block_start(p, static_cast<unsigned>(cls));
}

std::uintptr_t block_containing(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (const int cls = small_class_of(p); cls >= 0) return carved_slot(addr, static_cast<unsigned>(cls));
  PoolGuard guard(g_large_lock);
  if (!guard) return 0;
  std::uintptr_t found = 0;
  g_large.for_each([&](std::uintptr_t start, const LargeBlock& b) {
    if (addr - start < b.length) found = start;
  });
  return found;
}

bool read_block_start(const void* p, std::uintptr_t out[2]) {
  int cls = small_class_of(p);
  if (cls >= 0) {  // the small region is never unmapped
    if (!small_block_start(p, static_cast<unsigned>(cls))) return false;
    std::memcpy(out, p, 2 * sizeof out[0]);
    return true;
  }
  // A large block's record is kept here, not in its memory (which the program may have made
  // inaccessible, or which a racing free may be about to hand to the quarantine).
  PoolGuard guard(g_large_lock);
  LargeBlock* block = guard ? g_large.find(reinterpret_cast<std::uintptr_t>(p)) : nullptr;
  if (!block || block->held[0] == 0) return false;
  std::memcpy(out, block->held, sizeof block->held);
  return true;
}

std::size_t hold_large(const void* p, const std::uintptr_t record[2]) {
  if (small_class_of(p) >= 0) return 0;
  PoolGuard guard(g_large_lock);
  if (!guard) return kRegistryBusy;
  LargeBlock* block = g_large.find(reinterpret_cast<std::uintptr_t>(p));
  if (!block) return 0;
  std::memcpy(block->held, record, sizeof block->held);
  note_kept(0, block->length);
  return written_part(*block);
}

const void* free_bitmap_top(unsigned cls, Part part) {
  PoolGuard guard(g_central[cls].lock);
  return g_central[cls].parts[part].level[ClassPart::kLevels - 1];
}

// Set once, as the region is reserved.
std::uintptr_t first_block(unsigned cls, Part part) HL_NO_THREAD_SAFETY_ANALYSIS {
  return reinterpret_cast<std::uintptr_t>(g_central[cls].parts[part].first_block());
}

// Without the lock: the exit scan calls it with the other threads stopped, one of which may hold
// it. bump only grows, one aligned pointer store at a time.
std::uintptr_t carved_end(unsigned cls, Part part) HL_NO_THREAD_SAFETY_ANALYSIS {
  return reinterpret_cast<std::uintptr_t>(
      __atomic_load_n(&g_central[cls].parts[part].bump, __ATOMIC_ACQUIRE));
}

bool lock_held_by_this_thread() {
  if (g_init_lock.held_by_this_thread() || g_large_lock.held_by_this_thread() ||
      g_slots_lock.held_by_this_thread())
    return true;
  for (Central& c : g_central)
    if (c.lock.held_by_this_thread()) return true;
  return false;
}

bool give_back_kept_mappings() { return give_back_kept(); }

void with_class_lists_held(unsigned cls, void (*f)(void*), void* arg) {
  PoolGuard guard(g_central[cls].lock);
  f(arg);
}

std::size_t live_large_mappings(LargeMapping* out, std::size_t max, int tries) {
  if (g_large_lock.held_by_this_thread()) return kLockBusy;
  bool locked = false;
  for (int i = 0; i < tries && !(locked = g_large_lock.try_lock()); ++i) __builtin_ia32_pause();
  if (!locked) return kLockBusy;
  std::size_t n = 0;
  g_large.for_each([&](std::uintptr_t start, const LargeBlock& b) {
    if (n < max) out[n] = LargeMapping{start, b.length, b.held[0] != 0 || b.freeing};
    ++n;
  });
  g_large_lock.unlock();
  std::sort(out, out + std::min(n, max),
            [](const LargeMapping& a, const LargeMapping& b) { return a.start < b.start; });
  return n;
}

std::size_t cached_large_mappings(Span* out, std::size_t max) HL_NO_THREAD_SAFETY_ANALYSIS {
  return g_spans.copy_settled(out, max);
}

void prefork() {
  g_init_lock.lock();
  for (Central& c : g_central) c.lock.lock();
  g_large_lock.lock();
  g_slots_lock.lock();
}

void postfork() {
  g_slots_lock.unlock();
  g_large_lock.unlock();
  for (Central& c : g_central) c.lock.unlock();
  g_init_lock.unlock();
}

Stats stats() {
  Stats s{};
  for (Central& c : g_central) {
    if (!g_ready.load(std::memory_order_acquire)) break;
    SpinGuard guard(c.lock);
    for (const ClassPart& p : c.parts) s.small_committed += part_committed(p);
  }
  s.refused_commits = g_refused_commits.load(std::memory_order_relaxed);
  SpinGuard guard(g_large_lock);
  s.large_live = g_large_live;
  return s;
}

}  // namespace heapledger::detail::pool
