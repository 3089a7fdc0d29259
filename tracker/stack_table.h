// Interned backtraces: identical stacks are stored once and named by a 32-bit id, which is all
// the ledger keeps per block. Lookups and inserts are lock-free (open addressing over ids, CAS to
// publish), so threads allocating from the same call sites never serialise here.
//
// The slots are four tables of growing size (2^12, 2^16, 2^19, 2^21), the next one mapped when
// first needed: a hash spreads a program's first stacks over every page of a table, and one table
// for a million stacks took a page fault (15 us on some VMs) for each of a small program's
// first few hundred. Once a table is half full, an empty slot a probe reaches is closed (a CAS,
// like an insert), and a probe that meets a closed slot goes on in the next table. Each empty
// slot changes once, to an id or to closed, so threads interning the same stack follow the same
// path and agree on one id.
//
// A slot holds the id (21 bits) with 11 bits of its stack's hash, bits the slot's index does not
// use: a probe passes all but 1 in 2,048 of other stacks' slots without loading their records.
// Most of a big program's stacks lie in the third or fourth table, and each occupied slot on the
// way there cost two dependent cache misses (the id's entry in records_, then the record) before
// slots had the tag.
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
  // What the site held at the process's highest live total so far (see Peak in state.h), saved
  // by the first change to the site after that peak. A peak is named by its live total, which
  // only grows. peak_of: the latest peak a save was claimed for (low 48 bits) under the save's
  // number on this site (high 16); peak_bytes and peak_blocks: the totals, each under the number
  // of the save that stored it. A thread that claimed a save and was preempted before storing
  // it cannot then write over a later save (a review's: the later peak's totals were lost).
  std::atomic<std::uint64_t> peak_of;
  std::atomic<std::uint64_t> peak_bytes;
  std::atomic<std::uint64_t> peak_blocks;

  static constexpr unsigned kSaveShift = 48;
  static constexpr std::uint64_t kValueMask = (std::uint64_t{1} << kSaveShift) - 1;
  static std::uint16_t save_of(std::uint64_t word) {
    return static_cast<std::uint16_t>(word >> kSaveShift);
  }

  // Before a change to the site: true if it is the first since `peak` (the process's peak live
  // total now), with the save's number in *save for store_save. Once per peak and site.
  bool claim_save(std::uint64_t peak, std::uint16_t* save) {
    peak = std::min(peak, kValueMask);
    std::uint64_t of = peak_of.load(std::memory_order_relaxed);
    while ((of & kValueMask) < peak) {
      *save = static_cast<std::uint16_t>(save_of(of) + 1);
      if (peak_of.compare_exchange_weak(of, std::uint64_t{*save} << kSaveShift | peak,
                                        std::memory_order_relaxed))
        return true;
    }
    return false;
  }
  void store_save(std::uint16_t save, std::int64_t bytes, std::int64_t blocks) {
    store_newer(peak_bytes, save, bytes);
    store_newer(peak_blocks, save, blocks);
  }
  // What the site held at `peak`: false if it has not changed since (it holds it now), or its
  // save is not stored yet.
  bool held_at(std::uint64_t peak, std::int64_t* bytes, std::int64_t* blocks) const {
    const std::uint64_t of = peak_of.load(std::memory_order_relaxed);
    if ((of & kValueMask) != std::min(peak, kValueMask)) return false;
    const std::uint64_t b = peak_bytes.load(std::memory_order_relaxed);
    const std::uint64_t n = peak_blocks.load(std::memory_order_relaxed);
    if (save_of(b) != save_of(of) || save_of(n) != save_of(of)) return false;
    *bytes = value_of(b);
    *blocks = value_of(n);
    return true;
  }

  // Followed by depth return addresses (std::uintptr_t) and depth module indexes (std::uint16_t).
  const std::uintptr_t* frames() const { return reinterpret_cast<const std::uintptr_t*>(this + 1); }
  const std::uint16_t* modules() const {
    return reinterpret_cast<const std::uint16_t*>(frames() + depth);
  }

 private:
  static std::int64_t value_of(std::uint64_t word) {  // 48-bit two's complement
    return static_cast<std::int64_t>(word << (64 - kSaveShift)) >> (64 - kSaveShift);
  }
  // Stores value under `save` unless a later save (ahead by less than half the numbers) is there.
  static void store_newer(std::atomic<std::uint64_t>& word, std::uint16_t save,
                          std::int64_t value) {
    const std::uint64_t mine =
        std::uint64_t{save} << kSaveShift | (static_cast<std::uint64_t>(value) & kValueMask);
    std::uint64_t seen = word.load(std::memory_order_relaxed);
    while (static_cast<std::uint16_t>(save - save_of(seen)) - 1u < 0x7fffu &&
           !word.compare_exchange_weak(seen, mine, std::memory_order_relaxed)) {
    }
  }
};

class StackTable {
 public:
  static constexpr std::uint32_t kEmptyStack = 0;  // id of the zero-frame stack
  static constexpr std::size_t kMaxStacks = std::size_t{1} << 20;
  static constexpr int kLevels = 4;
  static constexpr unsigned kLevelBits[kLevels] = {12, 16, 19, 21};  // the last: kMaxStacks at half

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
  std::atomic<std::uint32_t>* level(int l);  // mapped on first use; null if that fails
  // A new id: the one this thread took last and did not use (it lost the race to put its stack
  // in; four threads meeting the same 40,000 new stacks at once wasted 6,710-17,791), or the next;
  // kMaxStacks or more if full.
  std::uint32_t take_id();
  void give_back(std::uint32_t id);

  // Slots: 0 empty, kClosed (go on in the next level), else tag << kIdBits | (id + 1).
  static constexpr unsigned kIdBits = 21;
  static_assert(kMaxStacks < (std::size_t{1} << kIdBits) - 1);  // id + 1 never all ones
  static constexpr std::uint32_t kClosed = ~std::uint32_t{0};
  static std::uint32_t tag_of(std::uint64_t hash) {
    return static_cast<std::uint32_t>(hash >> (64 - (32 - kIdBits)));
  }
  static std::size_t level_mask(int l) { return (std::size_t{1} << kLevelBits[l]) - 1; }
  static std::size_t level_bytes(int l) {
    return (std::size_t{1} << kLevelBits[l]) * sizeof(std::atomic<std::uint32_t>);
  }

  ModuleMap* modules_ = nullptr;
  std::atomic<std::atomic<std::uint32_t>*> levels_[kLevels] = {};
  std::atomic<std::uint32_t> level_ids_[kLevels] = {};  // ids placed in each level
  std::atomic<StackRecord*>* records_ = nullptr;
  std::atomic<std::uint32_t> next_id_{0};
  std::uint32_t serial_ = 0;  // which table a thread's spare id belongs to
  std::atomic<std::size_t> record_bytes_{0};
};

std::uint64_t hash_frames(const std::uintptr_t* frames, std::uint32_t depth);

}  // namespace heapledger::detail
