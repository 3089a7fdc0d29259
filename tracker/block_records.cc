// BlockRecords: mapping the slices, and the walks over them; see block_records.h.
#include "tracker/block_records.h"

#include <algorithm>

#include "shim/os.h"

namespace heapledger::detail {

namespace {

constexpr std::uint64_t round_to_pages(std::uint64_t bytes) {
  return (bytes + os::kPageSize - 1) / os::kPageSize * os::kPageSize;
}

// Which part of which class a slice is for (see BlockRecords::locate).
unsigned slice_class(unsigned slice) { return slice % kNumClasses; }
pool::Part slice_part(unsigned slice) {
  return slice < kNumClasses ? pool::kRange : pool::kStarter;
}

// A starter slice starts on a cache line of its own (two classes' threads never share one), not
// on a page: a class's first block recorded faults in the page its first slot is on, and with a
// page for each slice that was a page for each class a program used. A starter slice holds 64 KiB
// of slots for the 16-byte class and 32 bytes for the 32 KiB one: packed, the slices of the
// classes from 256 bytes up share seven pages where they took twenty-nine (a tracked sed: 34 of
// its 292 page faults were first slots).
constexpr std::uint64_t kStarterSliceAlign = 64;
constexpr std::uint64_t round_up(std::uint64_t bytes, std::uint64_t to) {
  return (bytes + to - 1) / to * to;
}

// Bytes of a slice: a slot for every block its part can hold, with ranges of `range` bytes.
std::uint64_t span_of(unsigned slice, std::uint64_t range) {
  const pool::Part part = slice_part(slice);
  return (part == pool::kRange ? range : kStarterSlice) -
         pool::part_offset(slice_class(slice), part);
}
// A range's slice is whole pages: its slots are made writable and faulted in page by page (grow,
// prefault). The starter slices are made writable at once (map_slices).
std::uint64_t slice_bytes(unsigned slice, std::uint64_t range) {
  const std::uint64_t span = span_of(slice, range), size = kClassSize[slice_class(slice)];
  const std::uint64_t bytes = (span + size - 1) / size * sizeof(BlockRecords::Slot);
  return slice_part(slice) == pool::kRange ? round_to_pages(bytes)
                                           : round_up(bytes, kStarterSliceAlign);
}

}  // namespace

std::uint64_t BlockRecords::table_bytes() {
  const std::uint64_t range = std::uint64_t{1} << pool::g_region.shift;
  std::uint64_t total = 0;
  for (unsigned slice = 0; slice < 2 * kNumClasses; ++slice) total += slice_bytes(slice, range);
  return round_to_pages(total);
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
  for (unsigned slice = 0; slice < 2 * kNumClasses; ++slice) {
    Class& c = classes_[slice];
    const unsigned cls = slice_class(slice);
    c.size = kClassSize[cls];
    c.first_offset = pool::part_offset(cls, slice_part(slice));
    c.span = span_of(slice, range);
  }
  const std::uint64_t total = table_bytes();
  std::size_t left = os::address_space_left();
  if (left == os::kSpaceUnknown) left = 0;  // under a limit, with no telling what is left: the map
  auto* base = left / 4 >= total ? static_cast<char*>(os::reserve_internal_sparse(total)) : nullptr;
  if (!base) {
    state_.store(kFailed, std::memory_order_release);
    return false;
  }
  for (unsigned slice = 0; slice < 2 * kNumClasses; ++slice) {
    Class& c = classes_[slice];
    c.slots = reinterpret_cast<Slot*>(base);
    base += slice_bytes(slice, range);
    c.end = reinterpret_cast<Slot*>(base);
    c.writable.store(c.slots, std::memory_order_relaxed);
    c.prefaulted.store(c.slots, std::memory_order_relaxed);
  }
  // The starter parts' slots (about 216 KiB, packed: see kStarterSliceAlign) are made writable
  // at once: one system call rather than one for each class's first block.
  Slot* const starters = classes_[kNumClasses].slots;  // on a page: the ranges' slices are pages
  const std::uint64_t starter_bytes =
      round_to_pages(static_cast<std::uint64_t>(base - reinterpret_cast<char*>(starters)));
  if (os::make_writable(starters, static_cast<std::size_t>(starter_bytes)))
    for (unsigned slice = kNumClasses; slice < 2 * kNumClasses; ++slice)
      classes_[slice].writable.store(classes_[slice].end, std::memory_order_relaxed);
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
bool BlockRecords::grow(unsigned slice, Slot* s) {
  if (map_lock_.held_by_this_thread()) return spilled_.store(true), false;
  SpinGuard guard(map_lock_);
  Class& c = classes_[slice];
  Slot* writable = c.writable.load(std::memory_order_relaxed);
  if (s < writable) return true;  // another thread made it so
  // A starter slice (only if making them all writable at once failed) may start inside a page.
  const auto from = reinterpret_cast<std::uintptr_t>(writable) & ~(os::kPageSize - 1);
  const auto past = reinterpret_cast<std::uintptr_t>(s + 1);
  const std::uintptr_t to = std::min(reinterpret_cast<std::uintptr_t>(c.end),
                                     (past + kWritableStep - 1) / kWritableStep * kWritableStep);
  if (!os::make_writable(reinterpret_cast<void*>(from), to - from))
    return spilled_.store(true), false;
  c.writable.store(reinterpret_cast<Slot*>(to), std::memory_order_release);
  return true;
}

bool BlockRecords::make_ready(unsigned slice, Slot* s) {
  if (s >= classes_[slice].writable.load(std::memory_order_acquire) && !grow(slice, s))
    return false;
  prefault(slice, s);
  return true;
}

// Moves the mark past s, within the writable slots; whichever thread moves it faults in the step
// (but the first kPrefaultAfter bytes of slots, left to fault); others go on (their slot may
// fault).
void BlockRecords::prefault(unsigned slice, Slot* s) {
  Class& c = classes_[slice];
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

std::uintptr_t BlockRecords::slice_start(unsigned slice) {
  return pool::first_block(slice_class(slice), slice_part(slice));
}

std::uint64_t BlockRecords::carved_slots(unsigned slice) const {
  std::uintptr_t end = pool::carved_end(slice_class(slice), slice_part(slice)),
                 start = slice_start(slice);
  return end > start ? (end - start + classes_[slice].size - 1) / classes_[slice].size : 0;
}

std::size_t BlockRecords::size() {
  std::size_t n = 0;
  for_each([&](std::uintptr_t, const Record&) { ++n; });
  return n;
}

std::size_t BlockRecords::memory_bytes() {
  if (state_.load(std::memory_order_acquire) != kReady) return 0;
  std::size_t ranges = 0, starters = 0;  // the starter slices share pages
  for (unsigned slice = 0; slice < kNumClasses; ++slice)
    ranges += round_to_pages(carved_slots(slice) * sizeof(Slot));
  for (unsigned slice = kNumClasses; slice < 2 * kNumClasses; ++slice)
    starters += carved_slots(slice) * sizeof(Slot);
  return ranges + round_to_pages(starters);
}

}  // namespace heapledger::detail
