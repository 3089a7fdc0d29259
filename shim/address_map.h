// An open-addressing hash map from a non-zero address to a small value, living in memory mapped
// by shim/os.h (never the tracked heap). Linear probing with backward-shift deletion, so there
// are no tombstones and lookups stay short. Not synchronised: callers hold a lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shim/os.h"

namespace heapledger::detail {

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
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == 0) return nullptr;
    }
  }

  // Inserts or overwrites. Returns false only if memory for growing could not be mapped.
  bool insert(std::uintptr_t key, const Value& value) {
    if ((size_ + 1) * 4 > capacity() * 3 && !grow()) return false;
    std::size_t i = home(key);
    for (; slots_[i].key != 0; i = (i + 1) & mask_)
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
    for (; slots_[i].key != key; i = (i + 1) & mask_)
      if (slots_[i].key == 0) return false;
    if (out) *out = slots_[i].value;
    shift_back(i);
    --size_;
    return true;
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; slots_ && i <= mask_; ++i)
      if (slots_[i].key) f(slots_[i].key, slots_[i].value);
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_ ? mask_ + 1 : 0; }
  std::size_t memory_bytes() const { return capacity() * sizeof(Slot); }

 private:
  static constexpr std::size_t kInitialCapacity = 256;

  std::size_t home(std::uintptr_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  }

  // Backward-shift deletion: pull later members of the probe run into the hole.
  void shift_back(std::size_t hole) {
    for (std::size_t j = (hole + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
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
    std::size_t new_cap = slots_ ? capacity() * 2 : kInitialCapacity;
    auto* fresh = static_cast<Slot*>(os::map_internal(new_cap * sizeof(Slot)));
    if (!fresh) return false;
    Slot* old = slots_;
    std::size_t old_cap = capacity();
    slots_ = fresh;
    mask_ = new_cap - 1;
    for (std::size_t i = 0; i < old_cap; ++i) {
      if (old[i].key == 0) continue;
      std::size_t j = home(old[i].key);
      while (slots_[j].key != 0) j = (j + 1) & mask_;
      slots_[j] = old[i];
    }
    if (old) os::unmap_internal(old, old_cap * sizeof(Slot));
    return true;
  }

  Slot* slots_ = nullptr;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace heapledger::detail
