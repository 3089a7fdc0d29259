// The tracker's bump arena; see internal_alloc.h.
#include "tracker/internal_alloc.h"

#include <algorithm>
#include <atomic>

#include "shim/os.h"
#include "shim/spin_lock.h"

namespace heapledger::detail {
namespace {

constexpr std::size_t kChunk = 1 << 20;
// The arena is used front to back: its pages are faulted in this much at a time (os::prefault),
// one system call where the first writes to them took a page fault each.
constexpr std::size_t kPrefaultStep = 64 << 10;

SpinLock g_lock;
char* g_cursor HL_GUARDED_BY(g_lock) = nullptr;
char* g_end HL_GUARDED_BY(g_lock) = nullptr;
char* g_prefaulted HL_GUARDED_BY(g_lock) = nullptr;  // in the current chunk, up to here
std::atomic<std::size_t> g_mapped{0};

}  // namespace

void* internal_alloc(std::size_t bytes) {
  bytes = (bytes + 15) & ~std::size_t{15};
  if (bytes > kChunk / 4) {  // big tables get their own mapping
    void* p = os::map_internal(bytes);
    if (p) g_mapped.fetch_add(bytes, std::memory_order_relaxed);
    return p;
  }
  void* p;
  char* prefault_from = nullptr;
  char* prefault_to = nullptr;
  {
    SpinGuard guard(g_lock);
    if (static_cast<std::size_t>(g_end - g_cursor) < bytes) {
      auto* chunk = static_cast<char*>(os::map_internal(kChunk));
      if (!chunk) return nullptr;
      g_mapped.fetch_add(kChunk, std::memory_order_relaxed);
      g_cursor = g_prefaulted = chunk;
      g_end = chunk + kChunk;
    }
    p = g_cursor;
    g_cursor += bytes;
    if (g_cursor > g_prefaulted) {  // a step at a time; the chunk is a multiple of the step
      prefault_from = g_prefaulted;
      prefault_to = g_prefaulted =
          std::min(g_end, g_prefaulted + (g_cursor - g_prefaulted + kPrefaultStep - 1) /
                                             kPrefaultStep * kPrefaultStep);
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
