// Ledger operations; see ledger.h. Each operation holds at most one shard lock and calls nothing
// that could allocate from the tracked heap.
#include "tracker/ledger.h"

#include <bit>
#include <cstring>

#include "shim/os.h"
#include "shim/pool.h"

namespace heapledger::detail {

// Re-entered from a signal handler in the middle of a shard operation (TryGuard): the
// operation is skipped, which at worst leaves one block out of the books.
bool Ledger::insert(std::uintptr_t addr, const Record& r) {
  if (BlockRecords::Slot* slot = blocks_.slot(addr)) {
    BlockRecords::put(slot, r);
    return true;
  }
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  return guard && s.map.insert(addr, r);
}

bool Ledger::erase(std::uintptr_t addr, Record* out) {
  if (BlockRecords::Slot* slot = blocks_.slot(addr)) return BlockRecords::take(slot, out);
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  return guard && s.map.erase(addr, out);
}

void Ledger::set_quarantine(std::size_t bytes, std::size_t blocks, bool (*is_block)(const void*)) {
  is_block_ = is_block;
  quarantine_bytes_ = bytes / kShards;
  std::size_t per_shard = blocks / kShards;
  quarantine_blocks_ = per_shard ? static_cast<std::uint32_t>(std::bit_floor(per_shard)) : 0;
  if (quarantine_bytes_ == 0 || quarantine_blocks_ == 0) {  // off: releases take no lock
    quarantine_bytes_ = quarantine_blocks_ = 0;
    return;
  }
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    s.quarantine.ring = static_cast<Quarantine::Entry*>(
        os::map_internal(quarantine_blocks_ * sizeof(Quarantine::Entry)));
  }
}

// A small block's record is taken without a lock; the shard lock is needed only to hold the
// block back in the quarantine, or to look for the quarantine's tag when it was not live.
void Ledger::release(std::uintptr_t addr, std::uint32_t free_stack, Release* out) {
  BlockRecords::Slot* slot = blocks_.slot(addr);
  const bool taken = slot && BlockRecords::take(slot, &out->record);
  if (taken && (quarantine_blocks_ == 0 || out->record.kind() == AllocKind::kInternal)) {
    out->verdict = Release::kLive;
    return;
  }
  Shard& s = shard(addr);
  TryGuard guard(s.lock);
  if (!guard) {  // taken: released at once, not held back
    out->verdict = taken ? Release::kLive : Release::kSkipped;
    return;
  }
  if (taken || (!slot && s.map.erase(addr, &out->record))) {
    out->verdict = Release::kLive;
    if (s.quarantine.ring && out->record.kind() != AllocKind::kInternal)
      quarantine(s, addr, FreedBlock{out->record.stack(), free_stack}, out);
    return;
  }
  // Not live. Held back in this shard's quarantine if it carries its tag: the block cannot leave
  // the quarantine (nor be reused) while this shard's lock is held.
  if (s.quarantine.ring && is_block_ && is_block_(reinterpret_cast<const void*>(addr))) {
    std::uintptr_t words[2];
    std::memcpy(words, reinterpret_cast<const void*>(addr), sizeof words);
    if (words[0] == (addr ^ kFreedTag)) {
      out->verdict = Release::kDoubleFree;
      std::memcpy(&out->freed, &words[1], sizeof out->freed);
      return;
    }
  }
  out->verdict = Release::kUnknown;
}

// Appends to the shard's ring and tags the block; the oldest entries leave (and their memory is
// freed by the caller) while the shard is over its byte or block budget.
// A large block (one mapping of its own) is held back by its first page only: the rest of its
// pages go back to the system here, under the shard lock, while the block cannot yet leave the
// quarantine and its address range be mapped again for another block.
void Ledger::quarantine(Shard& s, std::uintptr_t addr, const FreedBlock& f, Release* out) {
  Quarantine& q = s.quarantine;
  const void* block = reinterpret_cast<const void*>(addr);
  const std::size_t mapped = pool::small_class_of(block) < 0 ? pool::large_usable_size(block) : 0;
  const std::uint64_t size = mapped ? os::kPageSize : out->record.size();  // what holding it costs
  if (size > quarantine_bytes_) return;  // too big to hold back: released at once
  const std::uint32_t mask = quarantine_blocks_ - 1;
  while ((q.count == quarantine_blocks_ || q.bytes + size > quarantine_bytes_) && q.count > 0 &&
         out->n_evicted < Release::kMaxEvicted) {
    const Quarantine::Entry& old = q.ring[q.head];
    q.bytes -= old.size;
    q.head = (q.head + 1) & mask;
    --q.count;
    out->evicted[out->n_evicted++] = old.addr;
  }
  if (q.count == quarantine_blocks_) return;  // still full (eviction capped): do not keep this one
  // A program may free a large block with a page it made inaccessible (a guard page): under
  // glibc, free() just unmaps it. The tag goes into the first page, so make that writable.
  if (mapped && !os::commit(reinterpret_cast<void*>(addr), os::kPageSize)) return;
  std::uintptr_t words[2] = {addr ^ kFreedTag, 0};
  static_assert(sizeof(FreedBlock) == sizeof(words[1]));
  std::memcpy(&words[1], &f, sizeof f);
  std::memcpy(reinterpret_cast<void*>(addr), words, sizeof words);
  if (mapped) {  // the exit scan reads its mapping as a root: no stale pointer may stay in it
    std::memset(reinterpret_cast<char*>(addr) + sizeof words, 0, os::kPageSize - sizeof words);
    if (mapped > os::kPageSize)
      os::discard(reinterpret_cast<void*>(addr + os::kPageSize), mapped - os::kPageSize);
  }
  q.ring[(q.head + q.count) & mask] = Quarantine::Entry{addr, size};
  ++q.count;
  q.bytes += size;
  out->quarantined = true;
  // The next block to leave was released long ago and is cold, and so is its ring entry: start
  // loading both now, some releases of this shard before the pools write into that block.
  __builtin_prefetch(&q.ring[(q.head + 4) & mask]);
  __builtin_prefetch(reinterpret_cast<const void*>(q.ring[q.head].addr), 1);
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
