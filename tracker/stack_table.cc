// Stack table; see stack_table.h.
#include "tracker/stack_table.h"

#include <cstring>

#include "shim/config.h"
#include "shim/os.h"
#include "tracker/internal_alloc.h"
#include "tracker/modules.h"

namespace heapledger::detail {
namespace {

// The id a thread took for a new stack and did not use, with its table's serial in the high half
// (tests make tables of their own). Exchanged, never read and then cleared: a signal handler on the
// thread may intern in between.
thread_local std::uint64_t tl_spare_id HL_TLS = 0;
std::atomic<std::uint32_t> g_table_serial{0};

}  // namespace

std::uint64_t hash_frames(const std::uintptr_t* frames, std::uint32_t depth) {
  std::uint64_t h = 0x243F6A8885A308D3ull ^ depth;
  for (std::uint32_t i = 0; i < depth; ++i) {
    h ^= frames[i];
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  return h;
}

bool StackTable::init(ModuleMap* modules) {
  modules_ = modules;
  serial_ = g_table_serial.fetch_add(1, std::memory_order_relaxed) + 1;
  // Address space only; pages are touched as ids are taken.
  records_ = static_cast<std::atomic<StackRecord*>*>(
      os::map_internal(kMaxStacks * sizeof(std::atomic<StackRecord*>)));
  if (!records_ || !level(0)) {  // out of address space: what was mapped goes back to the program
    if (records_) os::unmap_internal(records_, kMaxStacks * sizeof(std::atomic<StackRecord*>));
    records_ = nullptr;
    return false;
  }
  records_[0].store(make_record(nullptr, 0, hash_frames(nullptr, 0), 0), std::memory_order_release);
  next_id_.store(1, std::memory_order_release);
  return records_[0].load() != nullptr;
}

std::atomic<std::uint32_t>* StackTable::level(int l) {
  std::atomic<std::uint32_t>* slots = levels_[l].load(std::memory_order_acquire);
  if (slots) return slots;
  auto* fresh = static_cast<std::atomic<std::uint32_t>*>(os::map_internal(level_bytes(l)));
  if (!fresh) return nullptr;
  // The first level (16 KiB) takes every process's first stacks, each looked up (a read) before
  // it is written: page by page, the read mapped the zero page and the write faulted again.
  if (l == 0) os::prefault(fresh, level_bytes(l));
  if (levels_[l].compare_exchange_strong(slots, fresh, std::memory_order_acq_rel)) return fresh;
  os::unmap_internal(fresh, level_bytes(l));  // another thread mapped it first
  return slots;
}

StackRecord* StackTable::make_record(const std::uintptr_t* frames, std::uint32_t depth,
                                     std::uint64_t hash, std::uint32_t epoch) {
  std::size_t bytes = sizeof(StackRecord) + depth * (sizeof(std::uintptr_t) + sizeof(std::uint16_t));
  auto* r = static_cast<StackRecord*>(internal_alloc(bytes));
  if (!r) return nullptr;
  // Zero-filled: no live totals, and peak_of 0, so its first change after any peak saves 0.
  r->hash = hash;
  r->depth = depth;
  r->epoch = epoch;
  auto* f = const_cast<std::uintptr_t*>(r->frames());
  if (depth) std::memcpy(f, frames, depth * sizeof *frames);
  if (modules_ && depth) {
    modules_->sync();
    modules_->find_all(f, depth, const_cast<std::uint16_t*>(r->modules()));
  }
  record_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return r;
}

std::uint32_t StackTable::intern(const std::uintptr_t* frames, std::uint32_t depth,
                                 std::uint32_t epoch) {
  if (depth == 0 || !records_) return kEmptyStack;
  const std::uint64_t hash = hash_frames(frames, depth) ^ (std::uint64_t{epoch} * 0xC2B2AE3D27D4EB4Full);
  const std::uint32_t tag = tag_of(hash);
  // A stack seen early is in the first table; most of a big program's are one or two tables
  // down, whose slots are cold: load them all now, at once, rather than one after another.
  for (int l = 1; l < kLevels; ++l)
    if (const auto* slots = levels_[l].load(std::memory_order_relaxed))
      __builtin_prefetch(&slots[hash & level_mask(l)]);
  StackRecord* fresh = nullptr;  // made at most once per call, published by CAS
  std::uint32_t fresh_id = 0;
  for (int l = 0; l < kLevels; ++l) {
    std::atomic<std::uint32_t>* const slots = level(l);
    if (!slots) break;  // no memory for the next level
    const std::size_t mask = level_mask(l);
    const bool last = l == kLevels - 1;
    // Leaving the loop (a closed slot, or every slot probed) goes on in the next level.
    for (std::size_t i = hash & mask, probes = 0; probes <= mask; i = (i + 1) & mask, ++probes) {
      std::uint32_t slot = slots[i].load(std::memory_order_acquire);
      if (slot == 0 && !last && level_ids_[l].load(std::memory_order_relaxed) > mask / 2) {
        // Half full: this path goes on one level down, for every thread that comes this way.
        if (slots[i].compare_exchange_strong(slot, kClosed, std::memory_order_acq_rel)) break;
        // Lost the race for this slot: `slot` now holds the winner's id or kClosed.
      } else if (slot == 0) {
        if (!fresh) {
          fresh_id = take_id();
          if (fresh_id >= kMaxStacks) return kEmptyStack;
          fresh = make_record(frames, depth, hash, epoch);
          if (!fresh) {
            give_back(fresh_id);
            return kEmptyStack;
          }
          records_[fresh_id].store(fresh, std::memory_order_release);
        }
        if (slots[i].compare_exchange_strong(slot, tag << kIdBits | (fresh_id + 1),
                                             std::memory_order_acq_rel)) {
          level_ids_[l].fetch_add(1, std::memory_order_relaxed);
          return fresh_id;
        }
        // Lost the race for this slot: `slot` now holds the winner; compare with it below.
      }
      if (slot == kClosed) break;
      if (slot >> kIdBits != tag) continue;  // another stack's
      const std::uint32_t id = (slot & ((1u << kIdBits) - 1)) - 1;
      const StackRecord* r = get(id);
      if (r && r->hash == hash && r->depth == depth && r->epoch == epoch &&
          std::memcmp(r->frames(), frames, depth * sizeof *frames) == 0) {
        if (fresh) give_back(fresh_id);  // another thread put this stack in first
        return id;
      }
    }
    if (last) break;  // full
  }
  if (fresh) give_back(fresh_id);
  return kEmptyStack;
}

std::uint32_t StackTable::take_id() {
  const std::uint64_t spare = __atomic_exchange_n(&tl_spare_id, 0, __ATOMIC_RELAXED);
  if (spare != 0 && spare >> 32 == serial_) return static_cast<std::uint32_t>(spare);
  // Full: no more ids taken (a count run on past 2^32 would come round to ids in use).
  if (next_id_.load(std::memory_order_relaxed) >= kMaxStacks) return kMaxStacks;
  return next_id_.fetch_add(1, std::memory_order_acq_rel);
}

// Its record stays at records_[id], unreachable (no slot names the id), until the id is used
// again; the record's memory is not reused (the exit report may be reading it).
void StackTable::give_back(std::uint32_t id) {
  __atomic_exchange_n(&tl_spare_id, std::uint64_t{serial_} << 32 | id, __ATOMIC_RELAXED);
}

}  // namespace heapledger::detail
