// The tracker's bump arena; see internal_alloc.h.
#include "tracker/internal_alloc.h"

#include <algorithm>
#include <atomic>

#include "shim/os.h"
#include "shim/spin_lock.h"

namespace heapledger::detail {
namespace {

constexpr std::size_t kChunk = 1 << 20;
// Small blocks (stack records, ...) are carved front to back, and their pages faulted in
// os::kPrefaultStep at a time (os::prefault): one system call where the first writes took a page
// fault each. Blocks of kSparse bytes or more come from an arena of their own, never prefaulted: a
// table written where a hash puts its entries (a thread's memo, 82 KiB of which a thread writes a
// few pages). In one arena, prefaulted, 200 threads alive at once held 12 MB more (or 7 MB more
// with the memos themselves left out, as the step ahead of the small blocks after each memo took
// the next thread's).
constexpr std::size_t kSparse = 16 << 10;

struct Arena {
  char* cursor = nullptr;
  char* end = nullptr;
  char* prefaulted = nullptr;  // in the current chunk, up to here
};

SpinLock g_lock;
Arena g_small HL_GUARDED_BY(g_lock);
Arena g_sparse HL_GUARDED_BY(g_lock);
std::atomic<std::size_t> g_mapped{0};

}  // namespace

void* internal_alloc(std::size_t bytes) {
  bytes = (bytes + 15) & ~std::size_t{15};
  if (bytes > kChunk / 4) {  // big tables get their own mapping
    void* p = os::map_internal(bytes);
    if (p) g_mapped.fetch_add(bytes, std::memory_order_relaxed);
    return p;
  }
  const bool sparse = bytes >= kSparse;
  void* p;
  char* prefault_from = nullptr;
  char* prefault_to = nullptr;
  {
    SpinGuard guard(g_lock);
    Arena& a = sparse ? g_sparse : g_small;
    if (static_cast<std::size_t>(a.end - a.cursor) < bytes) {
      auto* chunk = static_cast<char*>(os::map_internal(kChunk));
      if (!chunk) return nullptr;
      g_mapped.fetch_add(kChunk, std::memory_order_relaxed);
      a.cursor = a.prefaulted = chunk;
      a.end = chunk + kChunk;
    }
    p = a.cursor;
    a.cursor += bytes;
    if (!sparse && a.cursor > a.prefaulted) {  // a step at a time; the chunk is a multiple of it
      prefault_from = a.prefaulted;
      prefault_to = a.prefaulted =
          std::min(a.end, a.prefaulted + (a.cursor - a.prefaulted + os::kPrefaultStep - 1) /
                                             os::kPrefaultStep * os::kPrefaultStep);
    }
  }
  // Outside the lock: another thread may be writing to the first of these pages already, which
  // prefaulting leaves as they are.
  if (prefault_to)
    os::prefault(prefault_from, static_cast<std::size_t>(prefault_to - prefault_from));
  return p;
}

void internal_alloc_prefork() { g_lock.lock(); }
void internal_alloc_postfork() { g_lock.unlock(); }
bool internal_alloc_lock_held() { return g_lock.held_by_this_thread(); }

std::size_t internal_mapped_bytes() { return g_mapped.load(std::memory_order_relaxed); }

}  // namespace heapledger::detail
