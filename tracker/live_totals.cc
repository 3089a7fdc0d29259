// LiveTotals; see live_totals.h.
#include "tracker/live_totals.h"

#include <algorithm>

#include "shim/single_thread.h"

namespace heapledger::detail {

void LiveTotals::attach(Slot* s) {
  Slot* head = slots_.load(std::memory_order_relaxed);
  do s->next = head;
  while (
      !slots_.compare_exchange_weak(head, s, std::memory_order_release, std::memory_order_relaxed));
}

LiveTotals::Change LiveTotals::change(Slot* s, std::uint32_t stack, std::int64_t bytes,
                                      std::int64_t blocks, std::int64_t peak) {
  if (!s) return shared_change(nullptr, stack, bytes, blocks, peak, false);
  const bool nested = s->changing.load(std::memory_order_relaxed);
  s->changing.store(true, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // set before the slot is read
  const Change c = slot_change(s, stack, bytes, blocks, peak, nested);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s->changing.store(nested, std::memory_order_relaxed);
  return c;
}

LiveTotals::Change LiveTotals::slot_change(Slot* s, std::uint32_t stack, std::int64_t bytes,
                                           std::int64_t blocks, std::int64_t peak, bool nested) {
  std::uint64_t w = s->word.load(std::memory_order_relaxed);
  while (w != 0) {
    const std::int64_t d = bytes_of(w) + bytes, b = blocks_of(w) + blocks;
    if ((bytes > 0 && d > s->reserve.load(std::memory_order_relaxed)) || !fits(d, b)) break;
    // Fails if the slot was closed meanwhile (or a signal handler changed it): then again.
    if (s->word.compare_exchange_weak(w, encode(d, b), std::memory_order_relaxed)) {
      site_change(s, stack, bytes, blocks);
      return Change{total(shared_.load(std::memory_order_relaxed)) -
                        reserved_.load(std::memory_order_relaxed) + d,
                    false};
    }
  }
  // An allocation past the slot's headroom: the slot closes (and asks for more at once). A free
  // that does not fit goes to the shared total as it is: frees never wait for the lock.
  if (w != 0 && bytes > 0 && !lock_.held_by_this_thread()) {
    SpinGuard guard(lock_);
    fold(s);
    s->countdown = 0;
  }
  return shared_change(s, stack, bytes, blocks, peak, !nested);
}

void LiveTotals::site_change(Slot* s, std::uint32_t stack, std::int64_t bytes,
                             std::int64_t blocks) {
  if (stack < (std::uint32_t{1} << (63 - kEntryStackShift))) {
    std::atomic<std::uint64_t>& e = s->sites[stack & (kSiteEntries - 1)];
    std::uint64_t v = e.load(std::memory_order_relaxed);
    while (v != 0) {  // closed (the slot with it): to the sink
      const bool empty = entry_bytes(v) == 0 && entry_blocks(v) == 0;
      if (!empty && entry_stack(v) != stack) break;  // another site's until the slot is folded
      const std::int64_t d = (empty ? 0 : entry_bytes(v)) + bytes,
                         b = (empty ? 0 : entry_blocks(v)) + blocks;
      if (!entry_fits(d, b)) break;
      if (e.compare_exchange_weak(v, encode_entry(stack, d, b), std::memory_order_relaxed)) return;
    }
  }
  to_sink(stack, bytes, blocks);
}

void LiveTotals::fold_sites(Slot* s) {
  for (std::atomic<std::uint64_t>& e : s->sites)
    if (const std::uint64_t v = e.exchange(0, std::memory_order_relaxed))
      to_sink(entry_stack(v), entry_bytes(v), entry_blocks(v));
}

LiveTotals::Change LiveTotals::shared_change(Slot* s, std::uint32_t stack, std::int64_t bytes,
                                             std::int64_t blocks, std::int64_t peak,
                                             bool may_open) {
  std::uint64_t x = shared_.load(std::memory_order_relaxed);
  for (;;) {
    // It could pass the peak while slots hold changes the shared total has not seen: they are
    // folded in first. Not by a signal handler inside the lock on this thread: counted as it is
    // (not exact: no peak is made by it).
    if (bytes > 0 && (x & kAnyOpen) && total(x) + bytes > peak && !lock_.held_by_this_thread()) {
      {
        SpinGuard guard(lock_);
        fold_all();
      }
      x = shared_.load(std::memory_order_relaxed);
      continue;
    }
    const std::uint64_t next = x + (static_cast<std::uint64_t>(bytes) << 1);
    if (single_threaded()) {  // see single_thread.h
      shared_.store(next, std::memory_order_relaxed);
      break;
    }
    if (shared_.compare_exchange_weak(x, next, std::memory_order_relaxed)) break;
  }
  add_relaxed(blocks_, blocks);
  to_sink(stack, bytes, blocks);
  Change c{total(x) + bytes, (x & kAnyOpen) == 0};
  if (!c.exact) c.live -= reserved_.load(std::memory_order_relaxed);
  if (s && may_open && s->countdown-- == 0) maybe_reserve(s, peak);
  return c;
}

// Headroom for a thread without a slot, now and then: only with threads (one thread's shared
// total is a plain add), and only when there is enough under the peak. Never waits for the lock.
HL_NO_THREAD_SAFETY_ANALYSIS void LiveTotals::maybe_reserve(Slot* s, std::int64_t peak) {
  s->countdown = kAskEvery;
  if (single_threaded() || s->word.load(std::memory_order_relaxed) != 0) return;
  if (peak - total(shared_.load(std::memory_order_relaxed)) < 4 * kMinReserve) return;
  if (lock_.held_by_this_thread() || !lock_.try_lock()) return;
  reserve(s, peak);
  lock_.unlock();
}

void LiveTotals::reserve(Slot* s, std::int64_t peak) {
  if (s->word.load(std::memory_order_relaxed) != 0) return;
  std::uint64_t x = shared_.load(std::memory_order_relaxed);
  std::int64_t r;
  do {
    r = std::min(kMaxReserve, (peak - total(x)) / 4);
    if (r < kMinReserve) return;
  } while (!shared_.compare_exchange_weak(x, (x + (static_cast<std::uint64_t>(r) << 1)) | kAnyOpen,
                                          std::memory_order_relaxed));
  ++open_;
  reserved_.store(reserved_.load(std::memory_order_relaxed) + r, std::memory_order_relaxed);
  s->reserve.store(r, std::memory_order_relaxed);
  for (std::atomic<std::uint64_t>& e : s->sites)
    e.store(encode_entry(0, 0, 0), std::memory_order_relaxed);
  s->word.store(encode(0, 0), std::memory_order_release);
}

void LiveTotals::fold_into_shared(std::int64_t bytes, bool open) {
  std::uint64_t x = shared_.load(std::memory_order_relaxed);
  std::uint64_t next;
  do next = ((x + (static_cast<std::uint64_t>(bytes) << 1)) & ~kAnyOpen) | (open ? kAnyOpen : 0);
  while (!shared_.compare_exchange_weak(x, next, std::memory_order_relaxed));
}

void LiveTotals::fold(Slot* s) {
  const std::uint64_t w = s->word.exchange(0, std::memory_order_relaxed);
  if (w == 0) return;  // closed already
  fold_sites(s);       // before bit 0 clears: a new peak reads the sites' counts
  const std::int64_t r = s->reserve.load(std::memory_order_relaxed);
  s->reserve.store(0, std::memory_order_relaxed);
  --open_;
  reserved_.store(reserved_.load(std::memory_order_relaxed) - r, std::memory_order_relaxed);
  blocks_.fetch_add(blocks_of(w),
                    std::memory_order_relaxed);  // before bit 0 clears: a peak reads it
  fold_into_shared(bytes_of(w) - r, open_ > 0);
}

void LiveTotals::fold_all() {
  std::int64_t bytes = 0, blocks = 0, reserved = 0;
  for (Slot* s = slots_.load(std::memory_order_acquire); s; s = s->next) {
    // A closed one is left unwritten (its thread's counts share the line); none opens meanwhile:
    // slots open under the lock.
    if (s->word.load(std::memory_order_relaxed) == 0) continue;
    const std::uint64_t w = s->word.exchange(0, std::memory_order_relaxed);
    if (w == 0) continue;
    fold_sites(s);
    bytes += bytes_of(w);
    blocks += blocks_of(w);
    reserved += s->reserve.load(std::memory_order_relaxed);
    s->reserve.store(0, std::memory_order_relaxed);
  }
  open_ = 0;
  reserved_.store(reserved_.load(std::memory_order_relaxed) - reserved, std::memory_order_relaxed);
  blocks_.fetch_add(blocks, std::memory_order_relaxed);
  fold_into_shared(bytes - reserved, false);
}

void LiveTotals::settle(std::int64_t* bytes, std::int64_t* blocks) {
  *blocks = 0;
  if (!lock_.held_by_this_thread()) {
    SpinGuard guard(lock_);
    fold_all();
  } else {  // exit() from a signal handler inside the lock: the slots are read, not folded
    for (const Slot* s = slots_.load(std::memory_order_acquire); s; s = s->next)
      if (const std::uint64_t w = s->word.load(std::memory_order_relaxed)) *blocks += blocks_of(w);
  }
  *bytes = estimate();
  *blocks += blocks_.load(std::memory_order_relaxed);
}

std::int64_t LiveTotals::estimate() const {
  std::int64_t bytes =
      total(shared_.load(std::memory_order_relaxed)) - reserved_.load(std::memory_order_relaxed);
  for (const Slot* s = slots_.load(std::memory_order_acquire); s; s = s->next)
    if (const std::uint64_t w = s->word.load(std::memory_order_relaxed)) bytes += bytes_of(w);
  return bytes;
}

void LiveTotals::close(Slot* s) {
  if (lock_.held_by_this_thread()) return;
  SpinGuard guard(lock_);
  fold(s);
}

}  // namespace heapledger::detail
