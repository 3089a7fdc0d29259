// Records of the pools' small blocks, found from the address alone: the pools' region gives the
// class and the part of it (its range, or its slice of the starter zone: see pool.h), the offset
// into that part gives the block's number, and the record sits at that number in the part's
// slice of one sparse mapping (the starter parts' slices packed together at its end). Recording a
// block is three stores and dropping it a load and a compare-and-swap (plain stores while the
// process has one thread): no lock, no search, no hash. A slice's pages cost memory only as far as
// its class has carved blocks, so the table costs 16 bytes per block slot the pools have handed
// out.
//
// A slot that holds no live block may hold the quarantine's record of the block's last free
// instead (a first word without a record's top bit): that slot was just read to free the block,
// so keeping it there costs no cache miss, where the block's own first bytes were cold for every
// block the program frees without reading (a string's characters, a vector's elements), and
// where the program could write over it after the free.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/config.h"
#include "shim/pool.h"
#include "shim/single_thread.h"
#include "shim/size_classes.h"
#include "shim/spin_lock.h"
#include "tracker/record.h"

namespace heapledger::detail {

class BlockRecords {
 public:
  struct Slot {
    // The record's first word (Record::holds_record); 0, or a freed block's record: no live block
    std::atomic<std::uint64_t> first;
    std::atomic<std::uint64_t> second;
  };

  // The slot of the small block starting exactly at addr. Null for any other address, for one
  // past its class's writable slots (no block there was ever recorded), and for every address if
  // the table could not be mapped (the ledger's map then keeps those blocks).
  HL_ALWAYS_INLINE Slot* slot(std::uintptr_t addr) {
    unsigned slice;
    Slot* s = locate(addr, &slice);
    return s && s < classes_[slice].writable.load(std::memory_order_acquire) ? s : nullptr;
  }
  // slot(), for a block about to be recorded: a class's slots are made writable kWritableStep
  // bytes at a time as its blocks are recorded, and past its first kPrefaultAfter bytes of them
  // faulted in os::kPrefaultStep at a time ahead of the blocks (os::prefault), as the pools fault
  // in the blocks' own pages. Null where the table is not mapped, or the slot could not be made
  // writable (see spilled()).
  HL_ALWAYS_INLINE Slot* slot_to_fill(std::uintptr_t addr) {
    unsigned slice;
    Slot* s = locate(addr, &slice);
    // One mark for both (the prefaulted slots are writable): a compare, as before slots were
    // made writable piecemeal.
    if (HL_UNLIKELY(s && s >= classes_[slice].prefaulted.load(std::memory_order_acquire)) &&
        !make_ready(slice, s))
      return nullptr;
    return s;
  }
  // Whether a small block's record ever went to the ledger's map for want of a writable slot
  // (a signal handler that allocated while its thread made slots writable): an empty slot then no
  // longer says that the block has no record.
  bool spilled() const { return spilled_.load(std::memory_order_relaxed); }

  static void put(Slot* s, const Record& r) {
    s->first.store(0, std::memory_order_relaxed);  // first, for find_freed racing with this
    s->second.store(r.second_word(), std::memory_order_release);
    s->first.store(r.first_word(), std::memory_order_release);
  }
  // Empties the slot; false if it held no live block (then it is left as it was: a freed
  // block's record stays). Of two threads freeing one block at once, exactly one gets the record.
  static bool take(Slot* s, Record* out) {
    std::uint64_t first, second;
    if (single_threaded()) {  // see single_thread.h
      first = s->first.load(std::memory_order_relaxed);
      if (!Record::holds_record(first)) return false;
      second = s->second.load(std::memory_order_relaxed);
      s->first.store(0, std::memory_order_relaxed);
    } else {
      first = s->first.load(std::memory_order_acquire);
      do {
        if (!Record::holds_record(first)) return false;
        second = s->second.load(std::memory_order_relaxed);
      } while (!s->first.compare_exchange_weak(first, 0, std::memory_order_acq_rel,
                                               std::memory_order_acquire));
    }
    if (out) *out = Record::from_words(first, second);
    return true;
  }
  static bool get(const Slot* s, Record* out) {
    std::uint64_t first = s->first.load(std::memory_order_acquire);
    if (!Record::holds_record(first)) return false;
    if (out) *out = Record::from_words(first, s->second.load(std::memory_order_relaxed));
    return true;
  }

  // A freed block's record (two words, the first non-zero without a record's top bit), kept in
  // its slot until the block is recorded again; after take() found it live.
  static void keep_freed(Slot* s, const std::uintptr_t words[2]) {
    s->second.store(words[1], std::memory_order_relaxed);
    s->first.store(words[0], std::memory_order_release);
  }
  // Whether the slot holds a freed block's record (not a live one's, not empty).
  static bool holds_freed(const Slot* s) {
    const std::uint64_t first = s->first.load(std::memory_order_acquire);
    return first != 0 && !Record::holds_record(first);
  }
  // holds_freed(), asked of a slot about to be written (put): read by a compare-and-swap of 0 for
  // 0, a write access that leaves the word as it is (x86's cmpxchg writes even when it fails). A
  // slot on a page never written then faults it in once; a plain read (or fetch_or, a load before
  // its cmpxchg) mapped the zero page and the write that followed faulted again (the tracker's own
  // blocks, the first of their class: 8 of a tracked sed's page faults).
  static bool holds_freed_before_put(Slot* s) {
    std::uint64_t first = 0;
    s->first.compare_exchange_strong(first, 0, std::memory_order_acquire);
    return first != 0 && !Record::holds_record(first);
  }
  // False if the slot holds no freed block's record (a live block's, or none). A record being
  // replaced by a live one meanwhile (put() clears the first word before it writes the second)
  // is not returned half-and-half. But a freed record's first word is the same on every free of
  // the block, so a reader that sleeps through the block's whole next life (handed out, freed
  // again: a double free racing the block's reuse) can pair it with a second word of that life:
  // stack numbers of other stacks (every user checks them against the stack table).
  static bool find_freed(const Slot* s, std::uintptr_t out[2]) {
    std::uint64_t first = s->first.load(std::memory_order_acquire);
    if (first == 0 || Record::holds_record(first)) return false;
    out[1] = s->second.load(std::memory_order_acquire);
    out[0] = first;
    return s->first.load(std::memory_order_relaxed) == first;
  }

  // Visits every live record in address order (the ranges', then the starter zone's), up to where
  // each part of each class has carved.
  template <class F>
  void for_each(F&& f) {
    if (state_.load(std::memory_order_acquire) != kReady) return;
    for (unsigned slice = 0; slice < 2 * kNumClasses; ++slice) {
      const Class& c = classes_[slice];
      std::uintptr_t start = slice_start(slice);
      const auto writable =
          static_cast<std::uint64_t>(c.writable.load(std::memory_order_acquire) - c.slots);
      const std::uint64_t carved = std::min(carved_slots(slice), writable);
      for (std::uint64_t n = 0; n < carved; ++n) {
        Record r;
        if (get(&c.slots[n], &r)) f(start + n * c.size, r);
      }
    }
  }
  std::size_t size();
  std::size_t memory_bytes();  // bytes of the slots of every block carved so far
  static std::uint64_t table_bytes();  // address space the table takes, for the pools' region
  bool mapped() const { return state_.load(std::memory_order_acquire) == kReady; }
  // fork: the lock that maps the table is held across fork(), like every other lock.
  void lock_mapping() HL_ACQUIRE(map_lock_) { map_lock_.lock(); }
  void unlock_mapping() HL_RELEASE(map_lock_) { map_lock_.unlock(); }
  bool mapping_lock_held() const { return map_lock_.held_by_this_thread(); }

 private:
  enum State : std::uint8_t { kUntried, kReady, kFailed };
  struct Class {
    Slot* slots;
    std::uint64_t first_offset;  // of the class's first block within its range
    std::uint64_t span;          // bytes from the first block to the end of the range
    std::uint64_t size;
    Slot* end;                      // of the slice
    std::atomic<Slot*> writable;    // slots below are read-write; the rest have no access
    // Slots below are writable, and faulted in or left to fault (the first kPrefaultAfter bytes).
    std::atomic<Slot*> prefaulted;
  };
  static constexpr std::size_t kPrefaultAfter = 64 << 10;
  // 65,536 slots at a time: a multiple of os::kPrefaultStep.
  static constexpr std::size_t kWritableStep = std::size_t{1} << 20;

  // The slot of the block at addr, and the slice it is in (*slice_out: the class's, or
  // kNumClasses more for its starter part's; see pool.h, Part).
  HL_ALWAYS_INLINE Slot* locate(std::uintptr_t addr, unsigned* slice_out) {
    const pool::Region& region = pool::g_region;
    std::uintptr_t off = addr - region.base;
    if (off >= region.size) return nullptr;
    if (HL_UNLIKELY(state_.load(std::memory_order_acquire) != kReady) && !map_slices())
      return nullptr;
    const pool::Place at = pool::place_of(addr);                  // without a branch: see there
    const unsigned slice = at.cls + kNumClasses * (1 - at.part);  // the starter parts' after
    const Class& c = classes_[slice];
    std::uint64_t rel = at.offset - c.first_offset;  // wraps below the first block
    if (rel >= c.span) return nullptr;
    // Exact when rel is a multiple of the size; otherwise the check below fails, as it must for
    // an address inside a block.
    std::uint64_t n = block_number(rel, at.cls);
    if (n * c.size != rel) return nullptr;
    *slice_out = slice;
    return c.slots + n;
  }
  // The next three take a slice number (see locate).
  HL_NOINLINE bool make_ready(unsigned slice, Slot* s);  // s writable and below `prefaulted`
  bool grow(unsigned slice, Slot* s);
  void prefault(unsigned slice, Slot* s);
  HL_COLD bool map_slices();
  static std::uintptr_t slice_start(unsigned slice);  // the address of its first block
  std::uint64_t carved_slots(unsigned slice) const;

  std::atomic<State> state_{kUntried};
  std::atomic<bool> spilled_{false};
  SpinLock map_lock_;
  // Each class's range's, then each class's starter part's.
  Class classes_[2 * kNumClasses] = {};
};

}  // namespace heapledger::detail
