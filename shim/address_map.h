// An open-addressing hash map from a non-zero address to a small value, living in memory mapped
// by shim/os.h (never the tracked heap). Linear probing with backward-shift deletion, so there
// are no tombstones and lookups stay short. It grows by half (not double) at 3/4 load, so it is
// always between 1/2 and 3/4 full: 24-byte slots cost 32-48 bytes per entry. Not synchronised:
// callers hold a lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shim/os.h"

namespace heapledger::detail {

// A full-avalanche mix of an address (splitmix64's finaliser): every output bit depends on every
// input bit, so callers can take independent bit ranges (a shard from the low bits, a slot from
// the high bits) without the two correlating.
constexpr std::uint64_t mix_address(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

template <class Value>
class AddressMap {
 public:
  struct Slot {
    std::uintptr_t key;  // 0: empty
    Value value;
  };

  AddressMap() = default;
  AddressMap(const AddressMap&) = delete;
  AddressMap& operator=(const AddressMap&) = delete;

  Value* find(std::uintptr_t key) {
    if (!slots_) return nullptr;
    for (std::size_t i = home(key);; i = next(i)) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == 0) return nullptr;
    }
  }

  // Inserts or overwrites. Returns false only if memory for growing could not be mapped.
  bool insert(std::uintptr_t key, const Value& value) {
    if ((size_ + 1) * 4 > capacity() * 3 && !grow()) return false;
    std::size_t i = home(key);
    for (; slots_[i].key != 0; i = next(i))
      if (slots_[i].key == key) {
        slots_[i].value = value;
        return true;
      }
    slots_[i] = Slot{key, value};
    ++size_;
    return true;
  }

  // Removes `key`, copying its value to *out. False if absent.
  bool erase(std::uintptr_t key, Value* out) {
    if (!slots_) return false;
    std::size_t i = home(key);
    for (; slots_[i].key != key; i = next(i))
      if (slots_[i].key == 0) return false;
    if (out) *out = slots_[i].value;
    shift_back(i);
    --size_;
    return true;
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < capacity_; ++i)
      if (slots_[i].key) f(slots_[i].key, slots_[i].value);
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t memory_bytes() const { return capacity() * sizeof(Slot); }

 private:
  static constexpr std::size_t kInitialCapacity = 256;

  // The high bits of the mix, scaled onto [0, capacity): any capacity, not only powers of two.
  std::size_t home(std::uintptr_t key) const {
    std::uint64_t h = mix_address(key);
    return static_cast<std::size_t>((static_cast<unsigned __int128>(h) * capacity_) >> 64);
  }
  std::size_t next(std::size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }

  // Backward-shift deletion: pull later members of the probe run into the hole.
  void shift_back(std::size_t hole) {
    for (std::size_t j = next(hole); slots_[j].key != 0; j = next(j)) {
      std::size_t want = home(slots_[j].key);
      bool movable = hole <= j ? (want <= hole || want > j) : (want <= hole && want > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].key = 0;
  }

  bool grow() {
    std::size_t new_cap = slots_ ? capacity_ + capacity_ / 2 : kInitialCapacity;
    auto* fresh = static_cast<Slot*>(os::map_internal(new_cap * sizeof(Slot)));
    if (!fresh) return false;
    Slot* old = slots_;
    std::size_t old_cap = capacity_;
    slots_ = fresh;
    capacity_ = new_cap;
    for (std::size_t i = 0; i < old_cap; ++i) {
      if (old[i].key == 0) continue;
      std::size_t j = home(old[i].key);
      while (slots_[j].key != 0) j = next(j);
      slots_[j] = old[i];
    }
    if (old) os::unmap_internal(old, old_cap * sizeof(Slot));
    return true;
  }

  Slot* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

}  // namespace heapledger::detail
