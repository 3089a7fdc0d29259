// The glue every entry point goes through: serve from the pools, tell the tracker. Entry points
// in malloc_api.cc and new_delete.cc are one-liners over these.
#pragma once

#include <errno.h>

#include <cstddef>

#include "shim/config.h"
#include "shim/os.h"
#include "shim/pool.h"
#include "tracker/tracker.h"

namespace heapledger::detail {

HL_ALWAYS_INLINE void* served(void* p, std::size_t size, AllocKind kind) {
  if (HL_UNLIKELY(p == nullptr)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (tracker::active()) tracker::on_alloc(p, size, kind, HL_CALLER());
  return p;
}

// A fresh block while tracking: a small one still holds what its last owner left in it (the pools
// write nothing into free blocks; an idle class may give their pages back, and then they read zero). Its first 16 bytes go, where that owner's links mostly were
// (a list or tree node's): the exit scan reads live blocks whole, and a stale pointer there would
// keep a leaked block "reachable" when the new owner does not write over it. They also held the
// quarantine's record of the last free where the ledger has no table for it.
HL_ALWAYS_INLINE void forget_record(void* p) {
  if (pool::small_class_of(p) >= 0) {
    static_cast<std::uintptr_t*>(p)[0] = 0;
    static_cast<std::uintptr_t*>(p)[1] = 0;
  }
}

// Everything allocate() does not do inline: large blocks, an empty cache, tracking.
HL_NOINLINE inline void* allocate_slow(std::size_t size, AllocKind kind, tracker::Caller caller) {
  if (!tracker::active()) pool::maybe_unguard();
  void* p = pool::alloc(size);
  // Out of memory while tracking: the quarantine gives its blocks back, then one more try (not for
  // a size no memory could serve: that would only lose the double frees the quarantine catches).
  if (HL_UNLIKELY(p == nullptr) && size <= pool::kMaxRequest && tracker::active() &&
      tracker::release_held())
    p = pool::alloc(size);
  if (HL_UNLIKELY(p == nullptr)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (tracker::active()) {
    forget_record(p);
    tracker::on_alloc(p, size, kind, caller);
  }
  return p;
}

// The fast path: a block from the thread's cache, untracked (its cache marked in use meanwhile
// once a signal handler is installed: pool::g_unguarded); null for anything else. It calls
// nothing, so an entry point made of it and one tail call needs no stack frame.
HL_ALWAYS_INLINE void* allocate_cached(std::size_t size) {
  if (HL_LIKELY(size <= kMaxSmallSize) && !tracker::active())
    return HL_LIKELY(pool::g_unguarded.load(std::memory_order_relaxed))
               ? pool::pop_cached<false, false>(size_class(size))
               : pool::pop_cached<false, true>(size_class(size));
  return nullptr;
}

HL_ALWAYS_INLINE void* allocate(std::size_t size, AllocKind kind) {
  if (void* p = allocate_cached(size)) return p;
  return allocate_slow(size, kind, HL_CALLER());
}

// align must be a power of two (callers check).
HL_ALWAYS_INLINE void* allocate_aligned(std::size_t size, std::size_t align, AllocKind kind) {
  void* p = pool::alloc_aligned(size, align);
  if (HL_UNLIKELY(p == nullptr) && size <= pool::kMaxRequest && align <= pool::kMaxRequest &&
      tracker::active() && tracker::release_held())
    p = pool::alloc_aligned(size, align);
  if (p && tracker::active()) forget_record(p);
  return served(p, size, kind);
}

// Tracked frees go through the tracker's verdict: a misuse is reported and the block left alone
// (so no misuse can corrupt the pools); a quarantined block is held back (the quarantine gives
// blocks back to the pools itself when their time is up).
HL_NOINLINE inline void deallocate_tracked(void* p, AllocKind kind, std::size_t size, std::size_t align,
                                           tracker::Caller caller) {
  tracker::FreeOutcome out;
  tracker::on_release(p, kind, size, align, &out, caller);
  if (out.action == tracker::FreeOutcome::kRelease) pool::free(p);
}

HL_NOINLINE inline void deallocate_slow(void* p, AllocKind kind, std::size_t size, std::size_t align,
                                        tracker::Caller caller) {
  if (p == nullptr) return;
  if (tracker::active()) return deallocate_tracked(p, kind, size, align, caller);
  pool::maybe_unguard();
  pool::free(p);  // a pointer we never handed out is left alone
}

// The fast path, as allocate()'s: a small block into the thread's cache, untracked (marked as
// there). Null is not in the small region, so it takes the slow path.
HL_ALWAYS_INLINE void deallocate(void* p, AllocKind kind, std::size_t size = tracker::kNoSize,
                                 std::size_t align = 0) {
  if (!tracker::active()) {
    const int cls = pool::small_class_of(p);
    if (HL_LIKELY(cls >= 0) && (HL_LIKELY(pool::g_unguarded.load(std::memory_order_relaxed))
                                    ? pool::push_cached<false>(p, static_cast<unsigned>(cls))
                                    : pool::push_cached<true>(p, static_cast<unsigned>(cls))))
      return;
  }
  deallocate_slow(p, kind, size, align, HL_CALLER());
}

constexpr bool is_pow2(std::size_t x) { return x && !(x & (x - 1)); }

void* reallocate(void* p, std::size_t size);
void* callocate(std::size_t count, std::size_t size);
int posix_memalign_impl(void** out, std::size_t align, std::size_t size);
void* memalign_impl(std::size_t align, std::size_t size);
void* aligned_alloc_impl(std::size_t align, std::size_t size);
void* valloc_impl(std::size_t size);
void* pvalloc_impl(std::size_t size);
std::size_t usable_size_impl(const void* p);

}  // namespace heapledger::detail
