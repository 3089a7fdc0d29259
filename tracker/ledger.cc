// Ledger operations; see ledger.h. Each operation holds at most one shard lock and calls nothing
// that could allocate from the tracked heap.
#include "tracker/ledger.h"

namespace heapledger::detail {

// Re-entered from a signal handler in the middle of a shard operation (TryGuard): the
// operation is skipped, which at worst leaves one block out of the books.
bool Ledger::insert(std::uintptr_t addr, const Record& r) {
  if (BlockRecords::Slot* slot = blocks_.slot_to_fill(addr)) {
    BlockRecords::put(slot, r);
    return true;
  }
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  return guard && s.map.insert(addr, r);
}

bool Ledger::erase(std::uintptr_t addr, Record* out) {
  Release rel;
  release(addr, &rel);
  if (rel.verdict == Release::kLive && out) *out = rel.record;
  return rel.verdict == Release::kLive;
}

// A small block's record is taken without a lock.
void Ledger::release(std::uintptr_t addr, Release* out) {
  if (BlockRecords::Slot* slot = blocks_.slot(addr)) {
    out->verdict = BlockRecords::take(slot, &out->record) ? Release::kLive : Release::kUnknown;
    out->slot = slot;
    return;
  }
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) {
    out->verdict = Release::kSkipped;
    return;
  }
  out->verdict = s.map.erase(addr, &out->record) ? Release::kLive : Release::kUnknown;
}

bool Ledger::find(std::uintptr_t addr, Record* out) {
  if (const BlockRecords::Slot* slot = blocks_.slot(addr)) return BlockRecords::get(slot, out);
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) return false;
  Record* r = s.map.find(addr);
  if (r && out) *out = *r;
  return r != nullptr;
}

std::size_t Ledger::size() {
  std::size_t n = blocks_.size();
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.size();
  }
  return n;
}

std::size_t Ledger::memory_bytes() {
  std::size_t n = blocks_.memory_bytes();
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.memory_bytes();
  }
  return n;
}

bool Ledger::lock_held_by_this_thread() const {
  if (blocks_.mapping_lock_held()) return true;
  for (const Shard& s : shards_)
    if (s.lock.held_by_this_thread()) return true;
  return false;
}

void Ledger::lock_all() {
  blocks_.lock_mapping();
  for (Shard& s : shards_) s.lock.lock();
}

void Ledger::unlock_all() {
  for (Shard& s : shards_) s.lock.unlock();
  blocks_.unlock_mapping();
}

}  // namespace heapledger::detail
