// The ledger: every live tracked block, keyed by address. The pools' small blocks have their
// records at a place their address names (BlockRecords: no lock, no search); every other block
// (large, or allocated before the pools existed) is in a table sharded by address, each shard an
// open-addressing table with its own lock, so threads rarely meet. The shards also hold the
// double-free quarantine. 16 bytes of record per block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/address_map.h"
#include "shim/spin_lock.h"
#include "tracker/block_records.h"
#include "tracker/record.h"

namespace heapledger::detail {

// A block released recently (quarantined), so that a second free of it can be told apart and
// shown with both stacks. Its memory is not reused while it is held back, so the record lives in
// the block's first 16 bytes (every block has them), where the pools overwrite it on reuse.
struct FreedBlock {
  std::uint32_t alloc_stack;
  std::uint32_t free_stack;
};

// What releasing a block found.
struct Release {
  enum Verdict : std::uint8_t {
    kLive,         // it was live: *record says how it was allocated
    kDoubleFree,   // already released and still remembered: *freed has both stacks
    kUnknown,      // neither live nor remembered
    kSkipped,      // the shard was mid-update on this very thread (signal re-entry): no verdict
  } verdict = kUnknown;
  Record record;
  FreedBlock freed{};
  bool quarantined = false;    // the block's memory is held back; release `evicted` instead
  static constexpr int kMaxEvicted = 8;
  std::uintptr_t evicted[kMaxEvicted];  // blocks whose quarantine ended: free them now
  int n_evicted = 0;
};

class Ledger {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr unsigned kShards = 1u << kShardBits;

  // Quarantine budget for all shards together (0 bytes: off). Set once, before use.
  // is_block: whether an address that is not live is the start of a block of ours, whose first
  // 16 bytes may be read (a quarantined block's record is there); null: never read.
  void set_quarantine(std::size_t bytes, std::size_t blocks, bool (*is_block)(const void*));

  // Records a block (overwriting any stale record at the same address). False if out of memory.
  bool insert(std::uintptr_t addr, const Record& r);
  // Removes the block at addr; false if there is none.
  bool erase(std::uintptr_t addr, Record* out);
  // Removes a live block and remembers it as freed (with free_stack), or reports why it can't.
  void release(std::uintptr_t addr, std::uint32_t free_stack, Release* out);
  bool find(std::uintptr_t addr, Record* out);
  // Starts loading the record of the small block at addr, for an insert or release soon after
  // that would otherwise wait for it (a block's record is as cold as the block's last use).
  HL_ALWAYS_INLINE void prefetch(std::uintptr_t addr) {
    if (BlockRecords::Slot* slot = blocks_.slot(addr)) __builtin_prefetch(slot, 1);
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
  // Freed blocks in release order, per shard: a ring (a power of two long) of addresses and
  // sizes; each block carries its FreedBlock itself, tagged with its address (kFreedTag).
  struct Quarantine {
    struct Entry {
      std::uintptr_t addr;
      std::uint64_t size;
    };
    Entry* ring = nullptr;
    std::uint32_t head = 0;   // oldest
    std::uint32_t count = 0;
    std::uint64_t bytes = 0;
  };
  static constexpr std::uintptr_t kFreedTag = 0x6865'6170'6c65'6467ull;  // "heapledg"
  struct alignas(64) Shard {
    SpinLock lock;
    AddressMap<Record> map HL_GUARDED_BY(lock);
    Quarantine quarantine HL_GUARDED_BY(lock);
  };
  // Low bits of the mix: independent of the high bits the shard's table indexes with.
  Shard& shard(std::uintptr_t addr) { return shards_[mix_address(addr) & (kShards - 1)]; }
  void quarantine(Shard& s, std::uintptr_t addr, const FreedBlock& f, Release* out);

  BlockRecords blocks_;
  Shard shards_[kShards];
  std::uint64_t quarantine_bytes_ = 0;   // per shard
  std::uint32_t quarantine_blocks_ = 0;  // per shard (ring capacity, a power of two)
  bool (*is_block_)(const void*) = nullptr;
};

}  // namespace heapledger::detail
