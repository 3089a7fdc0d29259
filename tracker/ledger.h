// The ledger: every live tracked block, keyed by address. The pools' small blocks have their
// records at a place their address names (BlockRecords: no lock, no search); every other block
// (large, or allocated before the pools existed) is in a table sharded by address, each shard an
// open-addressing table with its own lock, so threads rarely meet. 16 bytes of record per block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/address_map.h"
#include "shim/spin_lock.h"
#include "tracker/block_records.h"
#include "tracker/quarantine.h"
#include "tracker/record.h"

namespace heapledger::detail {

// What releasing a block found.
struct Release {
  enum Verdict : std::uint8_t {
    kLive,         // it was live: record says how it was allocated
    kDoubleFree,   // set by the tracker, not the ledger: the quarantine still holds it (freed)
    kUnknown,      // not live
    kSkipped,      // the shard was mid-update on this very thread (signal re-entry): no verdict
  } verdict = kUnknown;
  Record record;
  FreedBlock freed{};
  BlockRecords::Slot* slot = nullptr;  // a small block's slot in the table (null: none)
};

class Ledger {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr unsigned kShards = 1u << kShardBits;

  // Records a block (overwriting any stale record at the same address; but the tracker's own
  // block goes to the map where its slot keeps a freed block's record: see ledger.cc). False if
  // out of memory.
  bool insert(std::uintptr_t addr, const Record& r);
  // Removes the block at addr; false if there is none.
  bool erase(std::uintptr_t addr, Record* out);
  // Removes a live block (kLive, with its record), or says why it can't (kUnknown, kSkipped).
  void release(std::uintptr_t addr, Release* out);
  bool find(std::uintptr_t addr, Record* out);
  // Starts loading the record of the small block at addr, for an insert or release soon after
  // that would otherwise wait for it (a block's record is as cold as the block's last use).
  // False if addr is no small block's start (nothing to load: its record is in the map).
  HL_ALWAYS_INLINE bool prefetch(std::uintptr_t addr) {
    BlockRecords::Slot* slot = blocks_.slot(addr);
    if (slot) __builtin_prefetch(slot, 1);
    return slot != nullptr;
  }

  // The quarantine's record of a small block it holds back (two words, the first non-zero
  // without Record's top bit), kept in the slot release() took the block from (released.slot)
  // until the block is recorded again.
  static void keep_freed(const Release& released, const std::uintptr_t words[2]) {
    BlockRecords::keep_freed(released.slot, words);
  }
  // That record, if the slot of the small block at addr holds one.
  bool find_freed(std::uintptr_t addr, std::uintptr_t out[2]) {
    const BlockRecords::Slot* slot = blocks_.slot(addr);
    return slot && BlockRecords::find_freed(slot, out);
  }

  // Visits every block, one shard locked at a time.
  template <class F>
  void for_each(F&& f) {
    blocks_.for_each(f);
    for (Shard& s : shards_) {
      SpinGuard guard(s.lock);
      s.map.for_each(f);
    }
  }
  // The same, for a caller that holds every shard lock (lock_all), e.g. the leak scan. The small
  // blocks' records take no lock: a thread still running may change them meanwhile.
  template <class F>
  void for_each_locked(F&& f) {
    blocks_.for_each(f);
    for (Shard& s : shards_) s.map.for_each(f);
  }
  std::size_t size_locked() {
    std::size_t n = blocks_.size();
    for (Shard& s : shards_) n += s.map.size();
    return n;
  }

  std::size_t size();
  std::size_t memory_bytes();  // bytes of the small blocks' records and of the shard tables
  bool records_by_address() const { return blocks_.mapped(); }  // false: all in the map
  void lock_all();             // fork: held across fork(), released in parent and child
  bool lock_held_by_this_thread() const;
  void unlock_all();

 private:
  struct alignas(64) Shard {
    SpinLock lock;
    AddressMap<Record> map HL_GUARDED_BY(lock);
  };
  // Low bits of the mix: independent of the high bits the shard's table indexes with.
  Shard& shard(std::uintptr_t addr) { return shards_[mix_address(addr) & (kShards - 1)]; }

  BlockRecords blocks_;
  Shard shards_[kShards];
};

}  // namespace heapledger::detail
