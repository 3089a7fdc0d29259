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

HL_ALWAYS_INLINE void* allocate(std::size_t size, AllocKind kind) {
  return served(pool::alloc(size), size, kind);
}

// align must be a power of two (callers check).
HL_ALWAYS_INLINE void* allocate_aligned(std::size_t size, std::size_t align, AllocKind kind) {
  return served(pool::alloc_aligned(size, align), size, kind);
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

HL_ALWAYS_INLINE void deallocate(void* p, AllocKind kind, std::size_t size = tracker::kNoSize,
                                 std::size_t align = 0) {
  if (HL_UNLIKELY(p == nullptr)) return;
  if (tracker::active()) return deallocate_tracked(p, kind, size, align, HL_CALLER());
  pool::free(p);  // a pointer we never handed out is left alone
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
