// Ledger operations; see ledger.h. Each operation holds at most one shard lock and calls nothing
// that could allocate from the tracked heap.
#include "tracker/ledger.h"

namespace heapledger::detail {

// Re-entered from a signal handler in the middle of a shard operation (TryGuard): the
// operation is skipped, which at worst leaves one block out of the books.
//
// The tracker's own block on a slot that keeps the record of the program's free of that address
// (the quarantine's, after it let the block go) goes to the map instead, so that the record stays:
// taking the stack of a second free of that pointer may allocate (libunwind's per-thread cache;
// libdw, when it read the unwind rules), and the pools may hand it that very block. The second free
// then lost its first free's stacks (a user trial: 200-byte blocks, "first free no longer
// remembered" with threads, and no report at all with one thread, where the free waited).
bool Ledger::insert(std::uintptr_t addr, const Record& r) {
  if (BlockRecords::Slot* slot = blocks_.slot_to_fill(addr)) {
    if (r.kind() != AllocKind::kInternal || !BlockRecords::holds_freed_before_put(slot)) {
      BlockRecords::put(slot, r);
      return true;
    }
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
  BlockRecords::Slot* slot = blocks_.slot(addr);
  if (slot) {
    out->slot = slot;
    if (BlockRecords::take(slot, &out->record)) {
      out->verdict = Release::kLive;
      return;
    }
    out->verdict = Release::kUnknown;
    // Not live in its slot. If the slot keeps a free's record, the block may be one of the
    // tracker's own, in the map meanwhile (see insert); so may any where records spilled.
    if (!BlockRecords::holds_freed(slot) && !blocks_.spilled()) return;
  }
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) {  // a handler inside this shard: a small block stays kUnknown (its slot said so)
    if (!slot) out->verdict = Release::kSkipped;
    return;
  }
  if (s.map.erase(addr, &out->record)) {
    out->verdict = Release::kLive;
    out->slot = nullptr;  // the slot keeps the program's free's record
  } else {
    out->verdict = Release::kUnknown;
  }
}

bool Ledger::find(std::uintptr_t addr, Record* out) {
  if (const BlockRecords::Slot* slot = blocks_.slot(addr)) {
    if (BlockRecords::get(slot, out)) return true;
    // Else: maybe ours, in the map (insert), or spilled there.
    if (!BlockRecords::holds_freed(slot) && !blocks_.spilled()) return false;
  }
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
