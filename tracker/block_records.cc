// BlockRecords: mapping the slices, and the walks over them; see block_records.h.
#include "tracker/block_records.h"

#include <algorithm>

#include "shim/os.h"

namespace heapledger::detail {

namespace {

constexpr std::uint64_t round_to_pages(std::uint64_t bytes) {
  return (bytes + os::kPageSize - 1) / os::kPageSize * os::kPageSize;
}

// Bytes of class cls's slice: a slot for every block its range of `range` bytes can hold.
std::uint64_t slice_bytes(unsigned cls, std::uint64_t range) {
  const std::uint64_t span = range - class_offset(cls), size = kClassSize[cls];
  return round_to_pages((span + size - 1) / size * sizeof(BlockRecords::Slot));
}

}  // namespace

std::uint64_t BlockRecords::table_bytes() {
  const std::uint64_t range = std::uint64_t{1} << pool::g_region.shift;
  std::uint64_t total = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) total += slice_bytes(cls, range);
  return total;
}

// One sparse mapping for every class: with 64 GiB ranges that is about 215 GiB of address space,
// of which only the slots of carved blocks are ever touched. Without access until a class's
// blocks are recorded there (grow): a program that writes into every writable anonymous mapping
// (redis' memory test after a crash, which reads /proc/self/maps) faulted all of it in, and a
// crash became a run to the machine's memory limit and the OOM killer (a user trial's). If the
// system will not map it (strict overcommit, ulimit -v), every block stays in the ledger's map.
// Under an address-space limit it counts in full, sparse or not: it is taken only if it leaves the
// program three quarters of what is left (for its thread stacks and large blocks: under ulimit -v
// 2880000 the table left tests/programs/no_leak too little to start a std::thread), and the map
// serves otherwise.
bool BlockRecords::map_slices() {
  // Refused once: every later call says so without the lock.
  if (state_.load(std::memory_order_acquire) == kFailed) return false;
  if (map_lock_.held_by_this_thread()) {
    // fork() or the exit scan holds it on this thread, and nothing was ever recorded here: keep
    // every block in the map from now on, rather than wait for ourselves.
    state_.store(kFailed, std::memory_order_release);
    return false;
  }
  SpinGuard guard(map_lock_);
  if (State s = state_.load(std::memory_order_relaxed); s != kUntried) return s == kReady;
  const pool::Region& region = pool::g_region;
  if (region.size == 0) return false;  // the pools are not set up yet: try again later
  const std::uint64_t range = std::uint64_t{1} << region.shift;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    Class& c = classes_[cls];
    c.size = kClassSize[cls];
    c.first_offset = class_offset(cls);
    c.span = range - c.first_offset;
  }
  const std::uint64_t total = table_bytes();
  std::size_t left = os::address_space_left();
  if (left == os::kSpaceUnknown) left = 0;  // under a limit, with no telling what is left: the map
  auto* base = left / 4 >= total ? static_cast<char*>(os::reserve_internal_sparse(total)) : nullptr;
  if (!base) {
    state_.store(kFailed, std::memory_order_release);
    return false;
  }
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    Class& c = classes_[cls];
    c.slots = reinterpret_cast<Slot*>(base);
    base += slice_bytes(cls, range);
    c.end = reinterpret_cast<Slot*>(base);
    c.writable.store(c.slots, std::memory_order_relaxed);
    c.prefaulted.store(c.slots, std::memory_order_relaxed);
  }
  class_mask_ = range - 1;
  // A signal handler on this thread may have given up on the table meanwhile (see above).
  State untried = kUntried;
  if (state_.compare_exchange_strong(untried, kReady, std::memory_order_release)) return true;
  os::unmap_internal(classes_[0].slots, total);
  return false;
}

// Under the mapping lock, as the slices were mapped: taken by the leak scan and fork before they
// stop other threads, so none is stopped in here. Where it cannot be had (this thread holds it:
// a signal handler that allocates while its thread is in here) or the kernel refuses, the block's
// record goes to the ledger's map, and empty slots no longer prove there is none (spilled_).
bool BlockRecords::grow(unsigned cls, Slot* s) {
  if (map_lock_.held_by_this_thread()) return spilled_.store(true), false;
  SpinGuard guard(map_lock_);
  Class& c = classes_[cls];
  Slot* writable = c.writable.load(std::memory_order_relaxed);
  if (s < writable) return true;  // another thread made it so
  const auto from = reinterpret_cast<std::uintptr_t>(writable);
  const auto past = reinterpret_cast<std::uintptr_t>(s + 1);
  const std::uintptr_t to = std::min(reinterpret_cast<std::uintptr_t>(c.end),
                                     (past + kWritableStep - 1) / kWritableStep * kWritableStep);
  if (!os::make_writable(reinterpret_cast<void*>(from), to - from))
    return spilled_.store(true), false;
  c.writable.store(reinterpret_cast<Slot*>(to), std::memory_order_release);
  return true;
}

bool BlockRecords::make_ready(unsigned cls, Slot* s) {
  if (s >= classes_[cls].writable.load(std::memory_order_acquire) && !grow(cls, s)) return false;
  prefault(cls, s);
  return true;
}

// Moves the mark past s, within the writable slots; whichever thread moves it faults in the step
// (but the first kPrefaultAfter bytes of slots, left to fault); others go on (their slot may
// fault).
void BlockRecords::prefault(unsigned cls, Slot* s) {
  Class& c = classes_[cls];
  const auto left_to_fault = reinterpret_cast<std::uintptr_t>(c.slots) + kPrefaultAfter;
  Slot* seen = c.prefaulted.load(std::memory_order_relaxed);
  while (s >= seen) {
    const auto from = std::max(reinterpret_cast<std::uintptr_t>(seen), left_to_fault);
    const auto past = reinterpret_cast<std::uintptr_t>(s + 1);
    const std::uintptr_t to =  // within the writable slots (s is below their end)
        std::min(reinterpret_cast<std::uintptr_t>(c.writable.load(std::memory_order_acquire)),
                 (past + os::kPrefaultStep - 1) / os::kPrefaultStep * os::kPrefaultStep);
    if (c.prefaulted.compare_exchange_weak(seen, reinterpret_cast<Slot*>(to),
                                           std::memory_order_release, std::memory_order_relaxed)) {
      if (to > from) os::prefault(reinterpret_cast<void*>(from), to - from);
      return;
    }
  }
}

std::uintptr_t BlockRecords::class_start(unsigned cls) const {
  return pool::g_region.base + (std::uintptr_t{cls} << pool::g_region.shift) + classes_[cls].first_offset;
}

std::uint64_t BlockRecords::carved_slots(unsigned cls) const {
  std::uintptr_t end = pool::carved_end(cls), start = class_start(cls);
  return end > start ? (end - start + classes_[cls].size - 1) / classes_[cls].size : 0;
}

std::size_t BlockRecords::size() {
  std::size_t n = 0;
  for_each([&](std::uintptr_t, const Record&) { ++n; });
  return n;
}

std::size_t BlockRecords::memory_bytes() {
  if (state_.load(std::memory_order_acquire) != kReady) return 0;
  std::size_t bytes = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) bytes += round_to_pages(carved_slots(cls) * sizeof(Slot));
  return bytes;
}

}  // namespace heapledger::detail
