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
  std::uint32_t large;  // how many of its blocks are large ones
  std::uint64_t bytes;
  Inbox* owner;  // the thread whose frees these are, if its blocks go back to it
  Entry entries[kEntries];
};
static_assert(sizeof(Quarantine::Batch) <= 4096);

namespace {
// What a closed inbox holds: its thread has ended, a batch left there would stay.
Quarantine::Batch* const kClosed = reinterpret_cast<Quarantine::Batch*>(alignof(std::max_align_t));
}  // namespace

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
  if (local.inbox && HL_UNLIKELY(local.inbox->batch.load(std::memory_order_relaxed) != nullptr))
    release_inbox(local);
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
    b = local.batch = publish(local, b, true);
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
  b->large += mapping != 0;
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
    b->large = 0;
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
  if (local.inbox) blocks += release_inbox(local);
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

void Quarantine::to_spares(Batch* list, Batch* last) {
  SpinGuard guard(lock_);
  last->next = spare_;
  spare_ = list;
}

std::uint32_t Quarantine::empty_inbox(Inbox* inbox, Batch* now) {
  Batch* b = inbox->batch.exchange(now, std::memory_order_acq_rel);
  if (!b || b == kClosed) return 0;
  add_relaxed(inbox_bytes_, std::uint64_t{0} - b->bytes);
  const std::uint32_t blocks = b->count;
  b->next = nullptr;
  to_spares(b, release_blocks(b));
  return blocks;
}

void Quarantine::attach(Local& local, Inbox* inbox) {
  empty_inbox(inbox, nullptr);  // open (again); a batch there: its last thread did not close it
  local.inbox = inbox;
}

std::uint32_t Quarantine::release_inbox(Local& local) { return empty_inbox(local.inbox, nullptr); }

bool Quarantine::hand_back(const Local& local, Batch* b, Batch** released) {
  Inbox* to = b->owner;
  if (!to || to == local.inbox) return false;
  // Large blocks go back to the pools' shared cache of mappings wherever they are released; and
  // what sits in inboxes, where an idle thread leaves it, is kept to a quarter of the budget.
  const std::uint64_t bytes = b->bytes;
  if (b->large || inbox_bytes_.load(std::memory_order_relaxed) + bytes > budget_bytes_ / 4)
    return false;
  // Counted before it is there: its thread may take it at once, subtracting its bytes and zeroing
  // them (counted after, the total went below zero, and every hand-back after that was refused as
  // over the quarter: each thread then got the other's blocks, 63,108 batches of 69,243 in
  // thread_scaling 2 under full tracking).
  add_relaxed(inbox_bytes_, bytes);
  Batch* there = to->batch.load(std::memory_order_relaxed);
  do {
    if (there == kClosed) {
      add_relaxed(inbox_bytes_, std::uint64_t{0} - bytes);
      return false;
    }
  } while (!to->batch.compare_exchange_weak(there, b, std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  if (there) {  // its thread has not come for the last one: released here
    add_relaxed(inbox_bytes_, std::uint64_t{0} - there->bytes);
    there->next = nullptr;
    release_blocks(there);
    there->next = *released;
    *released = there;
  }
  return true;
}

// Blocks that leave the list go back to the pools through the thread that freed them, where it
// said so (attach): into its own cache, where it will use them again. Given back to the pools by
// whichever thread pushed them out, they went to that thread's cache, and a block last written on
// one core was written next on another (thread_scaling 2 under full tracking, on a build that kept
// the live counts per thread: 2.13-2.21 s, against 1.73-1.96 s with an experiment in which each
// thread released its own oldest batches). A thread that has not come for the last batch left for
// it when the next one comes has that one released where it is.
Quarantine::Batch* Quarantine::publish(Local& local, Batch* full, bool want_next) {
  Batch* leaving = nullptr;  // oldest first
  Batch* next = nullptr;
  full->owner = local.closed ? nullptr : local.inbox;
  {
    SpinGuard guard(lock_);
    bytes_ += full->bytes;
    blocks_ += full->count;
    // A partial batch (an exiting thread's) joins the newest if together they make one batch.
    if (newest_ && newest_->count + full->count <= Batch::kEntries &&
        newest_->bytes + full->bytes <= batch_bytes_) {
      std::memcpy(&newest_->entries[newest_->count], full->entries, full->count * sizeof full->entries[0]);
      newest_->count += full->count;
      newest_->large += full->large;
      newest_->bytes += full->bytes;
      full->count = 0;
      full->large = 0;
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
  Batch* emptied = nullptr;  // released here
  for (Batch* b = leaving; b;) {
    Batch* const after = b->next;
    b->next = nullptr;
    if (!hand_back(local, b, &emptied)) {
      release_blocks(b);
      b->next = emptied;
      emptied = b;
    }
    b = after;
  }
  if (emptied && want_next) {  // an emptied batch is the thread's next; the others are spares
    next = emptied;
    emptied = emptied->next;
    next->next = nullptr;
  }
  if (emptied) {
    Batch* last = emptied;
    while (last->next) last = last->next;
    to_spares(emptied, last);
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
  if (local.inbox) {
    empty_inbox(local.inbox, kClosed);
    local.inbox = nullptr;
  }
  Batch* b = local.batch;
  local.batch = nullptr;
  if (!b) return;
  if (b->count) {
    publish(local, b, false);
    return;
  }
  SpinGuard guard(lock_);
  b->next = spare_;
  spare_ = b;
}

std::size_t Quarantine::held_bytes() {
  SpinGuard guard(lock_);
  return bytes_ + inbox_bytes_.load(std::memory_order_relaxed);
}

std::size_t Quarantine::held_blocks() {
  SpinGuard guard(lock_);
  return blocks_;
}

}  // namespace heapledger::detail
