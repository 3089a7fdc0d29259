// Ledger operations; see ledger.h. Each operation holds exactly one shard lock and calls nothing
// that could allocate from the tracked heap.
#include "tracker/ledger.h"

#include "shim/os.h"

namespace heapledger::detail {

// Re-entered from a signal handler in the middle of a shard operation (TryGuard): the
// operation is skipped, which at worst leaves one block out of the books.
bool Ledger::insert(std::uintptr_t addr, const Record& r) {
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  return guard && s.map.insert(addr, r);
}

bool Ledger::erase(std::uintptr_t addr, Record* out) {
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  return guard && s.map.erase(addr, out);
}

void Ledger::set_quarantine(std::size_t bytes, std::size_t blocks) {
  quarantine_bytes_ = bytes / kShards;
  quarantine_blocks_ = static_cast<std::uint32_t>(blocks / kShards);
  if (quarantine_bytes_ == 0 || quarantine_blocks_ == 0) return;
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    s.quarantine.ring = static_cast<std::uintptr_t*>(
        os::map_internal(quarantine_blocks_ * sizeof(std::uintptr_t)));
  }
}

void Ledger::release(std::uintptr_t addr, std::uint32_t free_stack, Release* out) {
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) {
    out->verdict = Release::kSkipped;
    return;
  }
  if (s.map.erase(addr, &out->record)) {
    out->verdict = Release::kLive;
    if (s.quarantine.ring && out->record.kind() != AllocKind::kInternal)
      quarantine(s, addr, FreedBlock{out->record.size(), out->record.stack(), free_stack}, out);
    return;
  }
  if (FreedBlock* f = s.quarantine.blocks.find(addr)) {
    out->verdict = Release::kDoubleFree;
    out->freed = *f;
    return;
  }
  out->verdict = Release::kUnknown;
}

// Appends to the shard's ring; the oldest entries leave (and their memory is freed by the
// caller) while the shard is over its byte or block budget.
void Ledger::quarantine(Shard& s, std::uintptr_t addr, const FreedBlock& f, Release* out) {
  Quarantine& q = s.quarantine;
  if (f.size > quarantine_bytes_) return;  // too big to hold back: released at once
  if (!q.blocks.insert(addr, f)) return;  // no memory for bookkeeping: released at once  // no memory for bookkeeping: release it right away
  while ((q.count == quarantine_blocks_ || q.bytes + f.size > quarantine_bytes_) && q.count > 0 &&
         out->n_evicted < Release::kMaxEvicted) {
    std::uintptr_t old = q.ring[q.head];
    FreedBlock gone{};
    q.blocks.erase(old, &gone);
    q.bytes -= gone.size;
    q.head = (q.head + 1) % quarantine_blocks_;
    --q.count;
    out->evicted[out->n_evicted++] = old;
  }
  if (q.count == quarantine_blocks_) {  // still full (eviction capped): do not keep this one
    q.blocks.erase(addr, nullptr);
    return;
  }
  q.ring[(q.head + q.count) % quarantine_blocks_] = addr;
  ++q.count;
  q.bytes += f.size;
  out->quarantined = true;
}

bool Ledger::find(std::uintptr_t addr, Record* out) {
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) return false;
  Record* r = s.map.find(addr);
  if (r && out) *out = *r;
  return r != nullptr;
}

std::size_t Ledger::size() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.size();
  }
  return n;
}

std::size_t Ledger::memory_bytes() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.memory_bytes();
  }
  return n;
}

bool Ledger::lock_held_by_this_thread() const {
  for (const Shard& s : shards_)
    if (s.lock.held_by_this_thread()) return true;
  return false;
}

void Ledger::lock_all() {
  for (Shard& s : shards_) s.lock.lock();
}

void Ledger::unlock_all() {
  for (Shard& s : shards_) s.lock.unlock();
}

}  // namespace heapledger::detail
