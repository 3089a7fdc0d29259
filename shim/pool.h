// The size-class pools: small requests come from per-thread caches of per-class blocks carved
// from one address-space reservation, so a block's class follows from its address; large
// requests are mappings of their own, kept for reuse on free (see span_cache.h). The fast paths are
// inline and touch only thread-local state; everything that locks or maps is in pool.cc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/config.h"
#include "shim/size_classes.h"
#include "shim/span_cache.h"

namespace heapledger::detail::pool {

// Where the small-block reservation is: class c's range is [base + c<<shift, base + (c+1)<<shift),
// and above the ranges lies the starter zone, with class c's slice at starter + c<<kStarterShift.
// A class's first blocks come from its slice, then from its range (its two parts). A process's
// first use of a class faulted in a page of its own 64 GiB range, and with it page-table pages of
// its own (66-68 us on this VM where a page next to a touched one costs 15.7 us, `fault_cost 21`),
// for each of the twenty-odd classes a short process uses; the slices share those pages (a sed
// under the pools 6.95 -> 5.24 ms, plain 4.04 ms: docs/internals.md, the starter zone).
enum Part : unsigned { kStarter = 0, kRange = 1 };
constexpr unsigned kParts = 2;
struct Region {
  std::uintptr_t base;
  std::uintptr_t size;     // the ranges and the starter zone
  std::uintptr_t starter;  // the starter zone's start: base + (kNumClasses << shift)
  unsigned shift;
};
extern Region g_region;
constexpr std::size_t kStarterZoneBytes = std::size_t{kNumClasses} << kStarterShift;

// A thread's cached blocks of one class: an array of their addresses, so caching a block and
// handing it out again never touches its memory. A block freed long ago is cold: a free list
// linked through the blocks stalled every free on writing the link (and on the double-free key it
// checked there), and every refill on writing links into blocks the program had not yet touched.
struct Bin {
  void** slots;         // the cached blocks; slots[count - 1] goes out next
  std::uint32_t count;
  std::uint32_t limit;  // 0 while the thread has no cache (not registered yet, exited, uncached)
};
struct ThreadCache {
  Bin bins[kNumClasses];
  void* slot_array;     // where the bins' slots are (pool.cc)
  std::uint32_t state;  // see pool.cc
  std::uint8_t takes[kNumClasses];  // refills of each class so far, up to a few (pool.cc)
  bool in_bins;                     // see enter_bins
};
// constinit: no dynamic initialisation anywhere, so no call to a TLS wrapper on every access.
extern constinit thread_local ThreadCache tl_cache HL_TLS;

// Whether the pools have their region, reserving it now if no allocation did yet. Without one
// (an address-space limit too low for it), the C library's allocator serves from this call on
// (see system_heap.h): the library's constructor makes it, once dlsym works.
bool ready();
// Untracked: small blocks that no class can serve any more come from the C library's allocator
// rather than a mapping each (a page each, and one of the system's 65,530 mappings). Not when
// tracked: the exit scan would read the C library's memory as roots (its arenas, its free chunks'
// stale pointers; a review found lost blocks reported reachable), and the tracker would ask it
// the size of any pointer a program frees wrongly (a crash).
void spill_to_system();

// Slow paths: refill from the central lists or carve; flush to them; register the thread.
// size and align: what the caller asked for (the C library's allocator serves that, where it
// serves: see system_heap.h).
void* alloc_small_slow(unsigned cls, std::size_t size, std::size_t align);
void free_small_slow(void* p, unsigned cls);

// Where a part's first block sits in its range or slice.
constexpr std::size_t part_offset(unsigned cls, Part part) {
  return part == kStarter ? starter_offset(cls) : class_offset(cls);
}

// Where an address of the small-block region (addr - base < size) lies: its class, the part, and
// its offset from the start of the class's range or slice. Both parts' answers are computed and
// one picked without a branch (a conditional move, masks): a program's frees alternate between the
// two parts at random (a class's blocks are handed out from both), and a branch mispredicted on
// about half of them took single-thread churn under the pools from 0.21 s to 0.33 s.
struct Place {
  unsigned cls;
  Part part;
  std::uintptr_t offset;
};
HL_ALWAYS_INLINE Place place_of(std::uintptr_t addr) {
  static_assert(kStarter == 0 && kRange == 1);
  const std::uintptr_t off = addr - g_region.base, zone_off = addr - g_region.starter;
  const bool zone = addr >= g_region.starter;
  const std::uintptr_t zone_mask = std::uintptr_t{0} - zone;  // all ones in the zone
  const std::uintptr_t range_off = off & ((std::uintptr_t{1} << g_region.shift) - 1);
  const std::uintptr_t range_cls = off >> g_region.shift, zone_cls = zone_off >> kStarterShift;
  return Place{static_cast<unsigned>(zone ? zone_cls : range_cls), static_cast<Part>(1 + zone_mask),
               (zone_off & (kStarterSlice - 1) & zone_mask) | (range_off & ~zone_mask)};
}

// The class of a block in the small-block region, or -1 if the address is not in it.
HL_ALWAYS_INLINE int small_class_of(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (addr - g_region.base >= g_region.size) return -1;
  return static_cast<int>(place_of(addr).cls);
}

// Set while this thread changes one of its bins, from before it reads the count to after it
// stores the new one; false (and nothing set) if it is set already: a signal handler interrupted
// its own thread in there, and gets or leaves its block at the central lists. A handler's pop
// between the thread's read of a count and its store took the very block the thread was taking,
// and so two owners had it (a program whose handlers malloc reported false double frees: a
// review's; unit test Pool.ASignalHandlerBetweenAnyTwoInstructionsNeverSharesABlock).
HL_ALWAYS_INLINE bool enter_bins() {
  if (HL_UNLIKELY(tl_cache.in_bins)) return false;
  tl_cache.in_bins = true;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return true;
}
HL_ALWAYS_INLINE void leave_bins() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tl_cache.in_bins = false;
}

// Whether the untracked entry points may change a thread's cache without enter_bins(): no signal
// handler is installed that could interrupt them (none of the program's could allocate), and
// nothing is tracked. The mark costs a load and two stores on every cached malloc and free: the
// C++ workload pools only went from 0.37x glibc to 0.56x with it in one paired session (README).
// Opened by the first untracked slow call that finds both true; closed for good by the first
// handler a program installs (signal_api.cc).
extern constinit std::atomic<bool> g_unguarded;
extern constinit std::atomic<bool> g_handlers;  // a signal handler was installed
// From the untracked slow paths: opens the unguarded fast paths if nothing stands in the way.
HL_ALWAYS_INLINE void maybe_unguard() {
  if (HL_UNLIKELY(!g_unguarded.load(std::memory_order_relaxed)) &&
      !g_handlers.load(std::memory_order_relaxed)) {
    g_unguarded.store(true);
    // A handler installed meanwhile closes them again: it stores g_handlers before g_unguarded,
    // so one of the two sees the other's.
    if (g_handlers.load()) g_unguarded.store(false);
  }
}
// A signal handler is being installed: the fast paths take the mark from now on.
inline void note_signal_handler() {
  g_handlers.store(true);
  g_unguarded.store(false);
}

// A block of class cls from the thread's cache; null if it has none. Calls nothing, so an entry
// point made of it and a tail call for everything else needs no stack frame. kPrefetchNext: for
// the tracked path, whose blocks come back from the quarantine cold; the untracked fast path
// hands out blocks freed moments ago, and the prefetch there cost more than it saved
// (docs/internals.md, Prefetching what the quarantine makes cold).
// kGuarded: false only where g_unguarded allows.
template <bool kPrefetchNext = true, bool kGuarded = true>
HL_ALWAYS_INLINE void* pop_cached(unsigned cls) {
  if (kGuarded && HL_UNLIKELY(!enter_bins())) return nullptr;
  Bin& bin = tl_cache.bins[cls];
  std::uint32_t n = bin.count;
  void* p = nullptr;
  if (HL_LIKELY(n != 0)) {
    p = bin.slots[--n];
    bin.count = n;
    // The next block out may have been freed long ago (or held back by the tracker's quarantine)
    // and be cold: start loading it now.
    if (kPrefetchNext && n) __builtin_prefetch(bin.slots[n - 1], 1);
  }
  if (kGuarded) leave_bins();
  return p;
}

// Takes small block p of class cls into the thread's cache; false if the cache is full (then
// free_small_slow does). Nothing here checks p: the tracker refuses a double or invalid free
// before the pools see it; with track=0 nothing does (see README, Known limits).
template <bool kGuarded = true>
HL_ALWAYS_INLINE bool push_cached(void* p, unsigned cls) {
  if (kGuarded && HL_UNLIKELY(!enter_bins())) return false;
  Bin& bin = tl_cache.bins[cls];
  const std::uint32_t n = bin.count;
  const bool room = n < bin.limit;
  if (HL_LIKELY(room)) {
    bin.slots[n] = p;
    bin.count = n + 1;
  }
  if (kGuarded) leave_bins();
  return room;
}

HL_ALWAYS_INLINE void* alloc_small(unsigned cls, std::size_t size, std::size_t align = kMinAlign) {
  void* p = pop_cached(cls);
  return HL_LIKELY(p != nullptr) ? p : alloc_small_slow(cls, size, align);
}

HL_ALWAYS_INLINE void free_small(void* p, unsigned cls) {
  if (HL_UNLIKELY(!push_cached(p, cls))) free_small_slow(p, cls);
}

// Large blocks (over kMaxSmallSize, or aligned beyond what a class gives).
// zeroed: the block must read as zeros (calloc).
void* alloc_large(std::size_t size, std::size_t align, bool zeroed = false);
bool free_large(void* p);                 // false: not ours
std::size_t large_usable_size(const void* p);  // 0: not ours
// nullptr on failure (p intact); *no_room (if given) says whether memory or address space ran
// out (giving memory back might help), rather than the mapping being unable to move.
void* realloc_large(void* p, std::size_t size, bool* no_room = nullptr);
// Whether realloc(p, size) of large block p would grow it out of its mapping while a kept mapping
// could take it (and nothing was done to its pages since it was handed out): under tracking,
// realloc then copies into a new block and frees p, which the quarantine holds (see
// realloc_large, which does the same untracked without it).
bool grows_into_kept(const void* p, std::size_t size);
// No request larger than this can be served (more than the address space).
constexpr std::size_t kMaxRequest = std::size_t{1} << 47;

// malloc semantics without errno: nullptr when the size cannot be served.
HL_ALWAYS_INLINE void* alloc(std::size_t size) {
  if (HL_LIKELY(size <= kMaxSmallSize)) return alloc_small(size_class(size), size);
  return alloc_large(size, kMinAlign);
}

// align: a power of two.
HL_ALWAYS_INLINE void* alloc_aligned(std::size_t size, std::size_t align) {
  if (align <= kMinAlign) return alloc(size);
  unsigned cls = aligned_size_class(size, align);
  if (cls < kNumClasses) return alloc_small(cls, size, align);
  return alloc_large(size, align);
}

enum class FreeResult { kFreed, kForeign };

HL_ALWAYS_INLINE FreeResult free(void* p) {
  int cls = small_class_of(p);
  if (HL_LIKELY(cls >= 0)) {
    free_small(p, static_cast<unsigned>(cls));
    return FreeResult::kFreed;
  }
  return free_large(p) ? FreeResult::kFreed : FreeResult::kForeign;
}

// Whether p is a block of the C library's allocator, where it serves (see system_heap.h).
bool system_block(const void* p);

// Usable bytes of a block we own; 0 for a pointer we did not allocate.
HL_ALWAYS_INLINE std::size_t usable_size(const void* p) {
  int cls = small_class_of(p);
  if (HL_LIKELY(cls >= 0)) return kClassSize[cls];
  return large_usable_size(p);
}

// True if `p` is the start of a block slot of the small region that has been handed out at least
// once, or a live large block. Used to tell invalid frees apart without touching the pools.
bool owns_block_start(const void* p);
// The start of the block slot p points into: a small one handed out at least once, or a live
// large block's mapping (a walk over all of them: for error reports only). 0 if none.
std::uintptr_t block_containing(const void* p);
// The quarantine's record of the block that starts at p: a small block's first 16 bytes, or what
// hold_large() kept for a large one. False if no block starts at p (or a large one has none).
bool read_block_start(const void* p, std::uintptr_t out[2]);
// If p is a large block (a mapping of its own), keeps record with it (for read_block_start, until
// it is freed) and returns how much of its mapping may hold data (what it and the mapping's earlier
// owners asked for: past it the pages were never touched; a mapping may have room to grow, see
// alloc_large); else 0. kRegistryBusy: the registry is mid-update
// on this very thread (a signal handler's free), so nothing was kept.
constexpr std::size_t kRegistryBusy = ~std::size_t{0};
std::size_t hold_large(const void* p, const std::uintptr_t record[2]);

// Where part `part` of class `cls` has its first block, and where it has carved to so far: every
// block slot from the first to that end has been handed out at least once, none above it ever has.
std::uintptr_t first_block(unsigned cls, Part part);
std::uintptr_t carved_end(unsigned cls, Part part);

// True if the calling thread holds any pool lock (it was interrupted inside the allocator).
bool lock_held_by_this_thread();

// From now on a large block that takes a kept mapping (see SpanCache) gets the part it asked for
// cleared, as does a block that grows into its mapping's slack: what the mapping's last owner
// wrote there would be read by the leak scan as pointers the program holds, and hide leaks. The
// library calls it once tracking starts; pools only (no scan) need not pay for it.
void clear_reused_large();

// The leak scan's view of the large blocks' memory (see leak_scan.cc). Each copies up to max
// into out and returns how many there are. Registered blocks, sorted by address: their whole
// mappings (the slack past what the program asked for may hold what it wrote there before), and
// whether the quarantine holds the block or free() is on its way with it (freed: what it holds
// is no root). Cached: freed mappings kept for reuse (see SpanCache), which hold what their last
// block held; none if a stopped thread was changing the cache (SpanCache::copy_settled).
struct LargeMapping {
  std::uintptr_t start;
  std::size_t length;
  bool held;
};
// live_large_mappings tries the pools' lock `tries` times, never waits (kLockBusy if it could not
// have it): its caller is on the way out of the process. cached_large_mappings takes no lock:
// call it with every other thread stopped.
constexpr std::size_t kLockBusy = ~std::size_t{0};
std::size_t live_large_mappings(LargeMapping* out, std::size_t max, int tries);
std::size_t cached_large_mappings(Span* out, std::size_t max);

// Fork support: take every pool lock before fork, release in parent and child.
void prefork();
void postfork();

// Every freed mapping the pools keep goes back to the OS (as when a new mapping fails): for
// malloc_trim, and tests. False if there was none.
bool give_back_kept_mappings();
// Tests: runs f(arg) with class cls's central lists held by the calling thread, as a signal
// handler that interrupted the thread in there finds them.
void with_class_lists_held(unsigned cls, void (*f)(void*), void* arg);
// Tests: the top level of the bitmap of free blocks of a part of class cls (null before the pools
// are set up).
const void* free_bitmap_top(unsigned cls, Part part);

// Statistics for tests and benchmarks.
struct Stats {
  std::size_t small_committed;  // bytes of the small region made usable
  std::size_t large_live;       // bytes in live large mappings
  std::size_t refused_commits;  // times the system would not make more usable (a data limit)
};
Stats stats();

}  // namespace heapledger::detail::pool
