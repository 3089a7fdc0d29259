// The tracker's bump arena; see internal_alloc.h.
#include "tracker/internal_alloc.h"

#include <atomic>

#include "shim/os.h"
#include "shim/spin_lock.h"

namespace heapledger::detail {
namespace {

constexpr std::size_t kChunk = 1 << 20;

SpinLock g_lock;
char* g_cursor HL_GUARDED_BY(g_lock) = nullptr;
char* g_end HL_GUARDED_BY(g_lock) = nullptr;
std::atomic<std::size_t> g_mapped{0};

}  // namespace

void* internal_alloc(std::size_t bytes) {
  bytes = (bytes + 15) & ~std::size_t{15};
  if (bytes > kChunk / 4) {  // big tables get their own mapping
    void* p = os::map_internal(bytes);
    if (p) g_mapped.fetch_add(bytes, std::memory_order_relaxed);
    return p;
  }
  SpinGuard guard(g_lock);
  if (static_cast<std::size_t>(g_end - g_cursor) < bytes) {
    auto* chunk = static_cast<char*>(os::map_internal(kChunk));
    if (!chunk) return nullptr;
    g_mapped.fetch_add(kChunk, std::memory_order_relaxed);
    g_cursor = chunk;
    g_end = chunk + kChunk;
  }
  void* p = g_cursor;
  g_cursor += bytes;
  return p;
}

void internal_alloc_prefork() { g_lock.lock(); }
void internal_alloc_postfork() { g_lock.unlock(); }
bool internal_alloc_lock_held() { return g_lock.held_by_this_thread(); }

std::size_t internal_mapped_bytes() { return g_mapped.load(std::memory_order_relaxed); }

}  // namespace heapledger::detail
