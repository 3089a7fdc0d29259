// The malloc family, including glibc's __libc_ aliases, as one-line forwarders; the few
// functions with real semantics (realloc, calloc, the aligned family) follow below them.
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/alloc.h"
#include "shim/os.h"
#include "shim/system_heap.h"

using namespace heapledger::detail;

#define HL_ENTRY extern "C" HL_EXPORT

HL_ENTRY void* malloc(size_t size) { return allocate(size, AllocKind::kMalloc); }
HL_ENTRY void free(void* p) { deallocate(p, AllocKind::kMalloc); }
HL_ENTRY void cfree(void* p) { deallocate(p, AllocKind::kMalloc); }
HL_ENTRY void* calloc(size_t n, size_t size) { return callocate(n, size); }
HL_ENTRY void* realloc(void* p, size_t size) { return reallocate(p, size); }
HL_ENTRY void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return errno = ENOMEM, nullptr;
  return reallocate(p, total);
}
HL_ENTRY int posix_memalign(void** out, size_t align, size_t size) {
  return posix_memalign_impl(out, align, size);
}
HL_ENTRY void* aligned_alloc(size_t align, size_t size) { return aligned_alloc_impl(align, size); }
HL_ENTRY void* memalign(size_t align, size_t size) { return memalign_impl(align, size); }
HL_ENTRY void* valloc(size_t size) { return valloc_impl(size); }
HL_ENTRY void* pvalloc(size_t size) { return pvalloc_impl(size); }
HL_ENTRY size_t malloc_usable_size(void* p) { return usable_size_impl(p); }
// 1 if memory went back to the system: the large mappings the pools keep for reuse, and what the
// C library's heap does not use, where it serves (system_heap.h).
HL_ENTRY int malloc_trim(size_t pad) {
  const bool pools = pool::give_back_kept_mappings();
  return system_heap::trim(pad) != 0 || pools;
}
// The pools have no parameters; the C library's mallopt answers (0 for a value out of range, as
// the program expects), and sets them for its allocator, where it serves.
HL_ENTRY int mallopt(int param, int value) { return system_heap::set_option(param, value); }

HL_ENTRY void* __libc_malloc(size_t size) { return allocate(size, AllocKind::kMalloc); }
HL_ENTRY void __libc_free(void* p) { deallocate(p, AllocKind::kMalloc); }
HL_ENTRY void* __libc_calloc(size_t n, size_t size) { return callocate(n, size); }
HL_ENTRY void* __libc_realloc(void* p, size_t size) { return reallocate(p, size); }
HL_ENTRY void* __libc_memalign(size_t align, size_t size) { return memalign_impl(align, size); }
HL_ENTRY void* __libc_valloc(size_t size) { return valloc_impl(size); }
HL_ENTRY void* __libc_pvalloc(size_t size) { return pvalloc_impl(size); }

namespace heapledger::detail {

void* callocate(std::size_t count, std::size_t size) {
  std::size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return errno = ENOMEM, nullptr;
  // Large blocks asked for zeroed are fresh mappings, already zero; small blocks may be recycled.
  auto alloc = [total] {
    return total <= kMaxSmallSize ? pool::alloc(total) : pool::alloc_large(total, kMinAlign, true);
  };
  void* p = alloc();
  if (p == nullptr && total <= pool::kMaxRequest && tracker::active() && tracker::release_held())
    p = alloc();  // see allocate_slow
  // All of what malloc_usable_size may say the block has (the whole class, untracked or for a
  // block not recorded), as glibc clears all of its chunk: a calloc(1, 100) left 12 bytes of a
  // 112-byte block as the last owner wrote them (a trial's).
  if (p && total <= kMaxSmallSize) memset(p, 0, pool::usable_size(p));
  return served(p, total, AllocKind::kMalloc);
}

// Small blocks are reused in place while the new size still fits and uses at least half of the
// block; large blocks are remapped; otherwise (or if the remap failed) allocate, copy, free. The
// block re-enters the ledger at the new size with the realloc's call stack; where it could not
// be remapped, its record goes back as it was before the copy.
void* reallocate(void* p, std::size_t size) {
  if (p == nullptr) return allocate(size, AllocKind::kMalloc);
  if (size == 0) {  // glibc: frees and returns NULL
    tracker::ReallocRelease by_realloc;  // a bad pointer's report names realloc
    deallocate(p, AllocKind::kMalloc);
    return nullptr;
  }
  // The C library's block, where it serves (system_heap.h; untracked): its realloc.
  if (HL_UNLIKELY(!tracker::active() && pool::system_block(p)))
    return system_heap::realloc(p, size);
  std::size_t old = pool::usable_size(p);
  if (HL_UNLIKELY(tracker::active() && !tracker::is_live(p))) {
    tracker::ReallocRelease by_realloc;  // the report names realloc
    deallocate(p, AllocKind::kMalloc);   // reports the double or invalid free, touches nothing
    return errno = ENOMEM, nullptr;
  }
  if (old == 0) return errno = ENOMEM, nullptr;  // not ours: we cannot know its size
  const bool small = pool::small_class_of(p) >= 0;
  const bool in_place = small && size <= old && size >= old / 2;
  AllocKind release_as = AllocKind::kMalloc;  // how the copy below frees the old block
  // Under tracking a block that grows into a kept mapping is copied below: its old address goes
  // to the quarantine, so a stale free of it is still caught (pool::grows_into_kept).
  const bool into_kept = !small && tracker::active() && pool::grows_into_kept(p, size);
  if (in_place || (!small && size > kMaxSmallSize && !into_kept)) {
    const bool tracked = tracker::active();
    Record taken;
    if (tracked && !tracker::take_for_realloc(p, &taken))
      return errno = ENOMEM, nullptr;  // freed by another thread meanwhile: reported
    void* q = p;
    if (!in_place) {
      bool no_room = false;
      q = pool::realloc_large(p, size, &no_room);
      if (!q && no_room && tracked && tracker::release_held())
        q = pool::realloc_large(p, size);  // see allocate_slow
    }
    if (q) {
      if (tracked) tracker::realloc_done(taken);
      return served(q, size, AllocKind::kMalloc);
    }
    if (tracked) {
      tracker::put_back(p, taken);
      release_as = taken.kind();  // a mismatch was reported already, by take_for_realloc
    }
    // The mapping could not be moved (it is split in parts the kernel keeps apart: advice or a
    // lock on some of its pages) or grown in place: copy, as for a small block.
  }
  void* q = allocate(size, AllocKind::kMalloc);
  if (q == nullptr) return nullptr;  // errno set; the old block is intact
  memcpy(q, p, old < size ? old : size);
  if (tracker::active() && release_as == AllocKind::kMalloc)
    release_as = tracker::realloc_release_kind(p);
  deallocate(p, release_as);
  return q;
}

int posix_memalign_impl(void** out, std::size_t align, std::size_t size) {
  if (!is_pow2(align) || align % sizeof(void*) != 0) return EINVAL;
  int saved = errno;
  void* p = allocate_aligned(size, align, AllocKind::kAligned);
  // It reports through its result; glibc's leaves errno at ENOMEM on failure all the same (its
  // allocator set it), and a program's perror() after one says so (a review's).
  if (p == nullptr) return errno = ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

// glibc (2.36, this Debian's) rounds a non-power-of-two alignment up instead of failing, answers
// an alignment no allocation could honour with ENOMEM, and one above 2^63 with EINVAL.
void* memalign_impl(std::size_t align, std::size_t size) {
  if (align <= kMinAlign) return allocate(size, AllocKind::kAligned);
  if (align > SIZE_MAX / 2 + 1) return errno = EINVAL, nullptr;  // as glibc: no power of two
  if (!is_pow2(align)) align = std::size_t{1} << (64 - __builtin_clzll(align));
  return allocate_aligned(size, align, AllocKind::kAligned);
}

// In glibc 2.36 aligned_alloc is memalign (2.38 made it reject bad alignments).
void* aligned_alloc_impl(std::size_t align, std::size_t size) { return memalign_impl(align, size); }

void* valloc_impl(std::size_t size) { return allocate_aligned(size, os::kPageSize, AllocKind::kAligned); }

void* pvalloc_impl(std::size_t size) {
  std::size_t rounded = (size + os::kPageSize - 1) & ~(os::kPageSize - 1);
  if (rounded < size) return errno = ENOMEM, nullptr;
  return allocate_aligned(rounded ? rounded : os::kPageSize, os::kPageSize, AllocKind::kAligned);
}

// Tracked, what the program asked for, as memcheck answers: the leak scan reads a block that far,
// and pointers a program kept in the rest of the size class (malloc_usable_size said 112 for a
// malloc(100)) went unseen, the blocks they held reported lost (a user's trial).
std::size_t usable_size_impl(const void* p) {
  if (!p) return 0;
  std::size_t asked;  // 0 for a malloc(0), as memcheck answers
  if (tracker::active() && tracker::recorded_size(p, &asked)) return asked;
  return pool::usable_size(p);
}

}  // namespace heapledger::detail
