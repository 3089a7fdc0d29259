// The double-free quarantine; see quarantine.h. Nothing here allocates from the tracked heap:
// batches come from the internal arena and are reused, never freed.
#include "tracker/quarantine.h"

#include <algorithm>
#include <cstring>

#include "shim/os.h"
#include "tracker/internal_alloc.h"

namespace heapledger::detail {

struct Quarantine::Batch {
  static constexpr std::uint32_t kEntries = 254;  // one page with the header
  struct Entry {
    std::uintptr_t addr;
    std::uint64_t cost;  // bytes counted against the budget
  };
  Batch* next;
  std::uint32_t count;
  std::uint64_t bytes;
  Entry entries[kEntries];
};
static_assert(sizeof(Quarantine::Batch) <= 4096);

void Quarantine::init(std::size_t bytes, std::size_t blocks, const Hooks& hooks) {
  hooks_ = hooks;
  if (bytes == 0 || blocks == 0) return;
  budget_bytes_ = bytes;
  budget_blocks_ = blocks;
  // Room for the budget's blocks in full batches, and as many again for partial ones.
  budget_batches_ = 2 * std::max<std::uint64_t>(1, blocks / Batch::kEntries);
  batch_bytes_ = std::max<std::uint64_t>(bytes / 256, 1);
}

Quarantine::Batch* Quarantine::new_batch() {
  auto* b = static_cast<Batch*>(internal_alloc(sizeof(Batch)));  // zero-filled
  return b;
}

bool Quarantine::hold(Local& local, std::uintptr_t addr, std::size_t size, const FreedBlock& freed) {
  if (budget_bytes_ == 0 || local.closed) return false;
  void* block = reinterpret_cast<void*>(addr);
  // A large block (a mapping of its own) is held back by its first page only.
  const std::size_t mapping = hooks_.mapping_size(block);
  const std::uint64_t cost = mapping ? os::kPageSize : size;
  if (cost > batch_bytes_) return false;  // too big to hold back: released at once
  Batch* b = local.batch;
  if (!b || b->count == Batch::kEntries || b->bytes + cost > batch_bytes_) {
    local.batch = b = b ? publish(b, true) : new_batch();
    if (!b) return false;
  }
  // A program may free a large block with a page it made inaccessible (a guard page): under
  // glibc, free() just unmaps it. The record goes into the first page, so make that writable.
  if (mapping && !os::commit(block, os::kPageSize)) return false;
  std::uintptr_t words[2] = {addr ^ kTag, 0};
  static_assert(sizeof(FreedBlock) == sizeof(words[1]));
  std::memcpy(&words[1], &freed, sizeof freed);
  std::memcpy(block, words, sizeof words);
  if (mapping) {  // the exit scan reads its mapping as a root: no stale pointer may stay in it
    std::memset(static_cast<char*>(block) + sizeof words, 0, os::kPageSize - sizeof words);
    if (mapping > os::kPageSize)
      os::discard(static_cast<char*>(block) + os::kPageSize, mapping - os::kPageSize);
  }
  b->entries[b->count++] = Batch::Entry{addr, cost};
  b->bytes += cost;
  return true;
}

Quarantine::Batch* Quarantine::publish(Batch* full, bool want_next) {
  Batch* leaving = nullptr;  // oldest first
  Batch* next = nullptr;
  {
    SpinGuard guard(lock_);
    full->next = nullptr;
    (newest_ ? newest_->next : oldest_) = full;
    newest_ = full;
    bytes_ += full->bytes;
    blocks_ += full->count;
    ++batches_;
    Batch** tail = &leaving;
    while (oldest_ && (bytes_ > budget_bytes_ || blocks_ > budget_blocks_ || batches_ > budget_batches_)) {
      Batch* old = oldest_;
      oldest_ = old->next;
      if (!oldest_) newest_ = nullptr;
      bytes_ -= old->bytes;
      blocks_ -= old->count;
      --batches_;
      old->next = nullptr;
      *tail = old;
      tail = &old->next;
    }
    if (want_next && !leaving && spare_) {
      next = spare_;
      spare_ = next->next;
    }
  }
  // The blocks leave in the order they came, each loaded a few ahead of its release: they were
  // freed long ago and are cold, and the pools write into each one.
  Batch* last = nullptr;
  for (Batch* b = leaving; b; last = b, b = b->next) {
    constexpr std::uint32_t kAhead = 32;
    for (std::uint32_t i = 0; i < std::min(kAhead, b->count); ++i)
      __builtin_prefetch(reinterpret_cast<const void*>(b->entries[i].addr), 1);
    for (std::uint32_t i = 0; i < b->count; ++i) {
      if (i + kAhead < b->count) __builtin_prefetch(reinterpret_cast<const void*>(b->entries[i + kAhead].addr), 1);
      hooks_.release(reinterpret_cast<void*>(b->entries[i].addr));
    }
    b->count = 0;
    b->bytes = 0;
  }
  if (leaving) {  // the first emptied batch is the thread's next; the others are spares
    if (want_next) {
      next = leaving;
      leaving = leaving->next;
      next->next = nullptr;
    }
    if (leaving) {
      SpinGuard guard(lock_);
      last->next = spare_;
      spare_ = leaving;
    }
  }
  if (want_next && !next) next = new_batch();
  return next;
}

bool Quarantine::recall(std::uintptr_t addr, FreedBlock* out) const {
  std::uintptr_t words[2];
  if (budget_bytes_ == 0 || !hooks_.read_start(reinterpret_cast<const void*>(addr), words)) return false;
  if (words[0] != (addr ^ kTag)) return false;
  std::memcpy(out, &words[1], sizeof *out);
  return true;
}

void Quarantine::thread_exit(Local& local) {
  local.closed = true;
  Batch* b = local.batch;
  local.batch = nullptr;
  if (!b) return;
  if (b->count) {
    publish(b, false);
    return;
  }
  SpinGuard guard(lock_);
  b->next = spare_;
  spare_ = b;
}

std::size_t Quarantine::held_bytes() {
  SpinGuard guard(lock_);
  return bytes_;
}

std::size_t Quarantine::held_blocks() {
  SpinGuard guard(lock_);
  return blocks_;
}

}  // namespace heapledger::detail
