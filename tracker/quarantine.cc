// The double-free quarantine; see quarantine.h. Nothing here allocates from the tracked heap:
// batches come from the internal arena and are reused, never freed.
#include "tracker/quarantine.h"

#include <algorithm>
#include <cstring>

#include "shim/os.h"
#include "shim/pool.h"
#include "shim/single_thread.h"
#include "shim/size_classes.h"
#include "shim/span_cache.h"
#include "tracker/internal_alloc.h"

namespace heapledger::detail {

struct Quarantine::Batch {
  static constexpr std::uint32_t kEntries = 254;  // one page with the header
  struct Entry {
    std::uintptr_t addr_large;  // the block's address; its low bit set for a large block
    std::uint64_t cost;         // bytes counted against the budget
    void* block() const { return reinterpret_cast<void*>(addr_large & ~std::uintptr_t{1}); }
    bool large() const { return addr_large & 1; }
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

// A thread's first batch: one emptied earlier (threads come and go), or a new one.
Quarantine::Batch* Quarantine::spare_or_new() {
  {
    SpinGuard guard(lock_);
    if (Batch* b = spare_) {
      spare_ = b->next;
      return b;
    }
  }
  return static_cast<Batch*>(internal_alloc(sizeof(Batch)));  // zero-filled
}

void Quarantine::record_of(std::uintptr_t addr, FreedBlock freed, std::uintptr_t out[2]) {
  out[0] = addr ^ kTag;
  static_assert(sizeof(FreedBlock) == sizeof(out[1]));
  std::memcpy(&out[1], &freed, sizeof freed);
}

bool Quarantine::hold(Local& local, std::uintptr_t addr, std::size_t size, FreedBlock freed,
                      bool record_aside) {
  if (budget_bytes_ == 0 || local.closed) return false;
  void* block = reinterpret_cast<void*>(addr);
  std::uintptr_t record[2];
  record_of(addr, freed, record);
  const std::size_t mapping = hooks_.hold_large(block, record);
  if (mapping == ~std::size_t{0}) return false;
  // Pages kept up to the largest mapping the pools keep for reuse (and the budget): given back,
  // the next block that took the mapping faulted all of them in again (2 MiB blocks: 5.8 s for
  // 1,000 rounds against glibc's 0.03 s, 15 us a fault on this VM; a user trial).
  const bool keeps_pages =
      mapping != 0 && mapping <= std::min<std::size_t>(budget_bytes_, pool::SpanCache::kMaxSpan);
  // A small block holds its whole slot back from reuse: a 17-byte request, a 32-byte block; 16
  // bytes at 4096-byte alignment, a 4,096-byte one (charged 32, the budget held 265 MB: a review).
  // Blocks not from the pools (tests' own): the class of the size.
  const int cls = pool::small_class_of(block);
  const std::uint64_t held = mapping != 0            ? size
                             : cls >= 0              ? kClassSize[static_cast<unsigned>(cls)]
                             : size <= kMaxSmallSize ? kClassSize[size_class(size)]
                                                     : size;
  const std::uint64_t cost =
      mapping && !keeps_pages ? os::kPageSize : std::max<std::uint64_t>(held, mapping);
  if (cost > budget_bytes_) return false;  // too big to hold back: released at once
  Batch* b = local.batch;
  if (!b)
    b = local.batch = spare_or_new();
  else if (b->count == Batch::kEntries || (b->count > 0 && b->bytes + cost > batch_bytes_))
    b = local.batch = publish(b, true);
  if (!b) return false;
  if (mapping) {  // its record is with the pools: its pages are not touched, or all given back
    if (mappings_.load(std::memory_order_relaxed) >= kMaxMappings) return false;
    if (!keeps_pages && !os::discard(block, mapping)) return false;
    add_relaxed(mappings_, std::uint64_t{1});
  } else if (!record_aside) {
    std::memcpy(block, record, sizeof record);
  }
  b->entries[b->count++] = Batch::Entry{addr | (mapping != 0), cost};
  b->bytes += cost;
  return true;
}

// The blocks leave in the order they came. The pools do not touch a block they take back (it
// was freed long ago and is cold; they start loading it when they hand it out). Returns the
// list's last batch.
Quarantine::Batch* Quarantine::release_blocks(Batch* list) {
  Batch* last = nullptr;
  for (Batch* b = list; b; last = b, b = b->next) {
    for (std::uint32_t i = 0; i < b->count; ++i) {
      hooks_.release(b->entries[i].block());
      if (b->entries[i].large()) add_relaxed(mappings_, ~std::uint64_t{0});
    }
    b->count = 0;
    b->bytes = 0;
  }
  return last;
}

std::uint64_t Quarantine::drain(Local& local) {
  if (budget_bytes_ == 0) return 0;
  Batch* list;
  std::uint64_t blocks;
  {
    SpinGuard guard(lock_);
    list = oldest_;
    blocks = blocks_;
    oldest_ = newest_ = nullptr;
    bytes_ = blocks_ = batches_ = 0;
  }
  if (Batch* own = local.batch) {  // this thread's own batch, emptied in place
    blocks += own->count;
    Batch* next = own->next;
    own->next = nullptr;
    release_blocks(own);
    own->next = next;
  }
  if (Batch* last = release_blocks(list)) {
    SpinGuard guard(lock_);
    last->next = spare_;
    spare_ = list;
  }
  return blocks;
}

Quarantine::Batch* Quarantine::publish(Batch* full, bool want_next) {
  Batch* leaving = nullptr;  // oldest first
  Batch* next = nullptr;
  {
    SpinGuard guard(lock_);
    bytes_ += full->bytes;
    blocks_ += full->count;
    // A partial batch (an exiting thread's) joins the newest if together they make one batch.
    if (newest_ && newest_->count + full->count <= Batch::kEntries &&
        newest_->bytes + full->bytes <= batch_bytes_) {
      std::memcpy(&newest_->entries[newest_->count], full->entries, full->count * sizeof full->entries[0]);
      newest_->count += full->count;
      newest_->bytes += full->bytes;
      full->count = 0;
      full->bytes = 0;
      full->next = spare_;
      spare_ = full;
    } else {
      full->next = nullptr;
      (newest_ ? newest_->next : oldest_) = full;
      newest_ = full;
      ++batches_;
    }
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
  Batch* last = release_blocks(leaving);
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
  if (want_next && !next) next = spare_or_new();
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
