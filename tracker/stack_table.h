// Interned backtraces: identical stacks are stored once and named by a 32-bit id, which is all
// the ledger keeps per block. Lookups and inserts are lock-free (open addressing over ids, CAS to
// publish), so threads allocating from the same call sites never serialise here.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heapledger::detail {

class ModuleMap;

struct StackRecord {
  std::uint64_t hash;
  std::atomic<std::int64_t> live_bytes;   // bytes this call site holds right now
  std::atomic<std::int64_t> live_blocks;
  std::uint32_t depth;
  std::uint32_t epoch;  // unload epoch it was seen in: after a dlclose, addresses are reused
  // Followed by depth return addresses (std::uintptr_t) and depth module indexes (std::uint16_t).
  const std::uintptr_t* frames() const { return reinterpret_cast<const std::uintptr_t*>(this + 1); }
  const std::uint16_t* modules() const {
    return reinterpret_cast<const std::uint16_t*>(frames() + depth);
  }
};

class StackTable {
 public:
  static constexpr std::uint32_t kEmptyStack = 0;  // id of the zero-frame stack
  static constexpr std::size_t kSlotBits = 21;     // 2M slots: up to ~1.4M distinct stacks
  static constexpr std::size_t kMaxStacks = std::size_t{1} << 20;

  // `modules` resolves each frame to its object when a stack is seen the first time.
  bool init(ModuleMap* modules);
  // The id of this stack, adding it if new. Returns kEmptyStack if the table is full.
  // `epoch` counts dlclose calls: the same addresses in two epochs may be different code.
  std::uint32_t intern(const std::uintptr_t* frames, std::uint32_t depth, std::uint32_t epoch = 0);
  // Null before init(): blocks freed by other libraries' constructors run before ours.
  StackRecord* get(std::uint32_t id) const {
    return records_ && id < kMaxStacks ? records_[id].load(std::memory_order_acquire) : nullptr;
  }
  // Ids are dense: 0 .. size()-1. At most kMaxStacks: threads that found the table full have
  // counted past it.
  std::uint32_t size() const {
    return std::min(next_id_.load(std::memory_order_acquire),
                    static_cast<std::uint32_t>(kMaxStacks));
  }
  std::size_t memory_bytes() const { return record_bytes_.load(std::memory_order_relaxed); }

 private:
  StackRecord* make_record(const std::uintptr_t* frames, std::uint32_t depth, std::uint64_t hash,
                           std::uint32_t epoch);

  ModuleMap* modules_ = nullptr;
  std::atomic<std::uint32_t>* slots_ = nullptr;        // 0: empty, else id + 1
  std::atomic<StackRecord*>* records_ = nullptr;
  std::atomic<std::uint32_t> next_id_{0};
  std::atomic<std::size_t> record_bytes_{0};
};

std::uint64_t hash_frames(const std::uintptr_t* frames, std::uint32_t depth);

}  // namespace heapledger::detail
