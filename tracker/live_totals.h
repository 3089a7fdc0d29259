// Live bytes and blocks, counted so that threads share no cache line while the peak is out of
// reach, and exactly where a new peak can be made.
//
// Every allocation and free changes the live totals, and the peak (with each call site's share of
// it) needs them exact at every step. Shared counters do that, at the price of one cache line
// that every thread writes on every call: two threads doing nothing else took more than twice as
// long as one. Counts kept per thread and folded in now and then cost the peak its exactness (an
// idle thread's unfolded changes were missing from it), so they were taken back.
//
// Here each thread may hold some headroom under the peak, reserved from the shared total. While
// it holds some (its slot is open), its allocations stay in its slot as long as its net change
// stays within that headroom, and its frees always do: a compare-and-swap on its own cache line.
// Headroom is reserved only while the shared total plus it stays at or under the peak, and an
// allocation counted on the shared total while any slot is open must stay at or under the peak
// too: so while any slot is open the live total (the shared total less the headroom not used) is
// at or under the peak, and no new peak can be made. An allocation that would pass the peak while
// a slot is open first closes every slot, folding its changes in (under the lock); with none open,
// the shared total is the live total, exact at the allocation's compare-and-swap, and that is the
// only place a new peak is made: as exact as with shared counters alone. Programs that keep
// setting new peaks (growing) run with every slot closed, on the shared total, as before.
// The call sites' counts go the same way (Slot::sites): a slot's site entries are given to the
// sites' shared counts when it is folded, so every site's count is whole at a new peak (but
// for a change in flight on another thread, between its totals and its site, as before).
#pragma once

#include <atomic>
#include <cstdint>

#include "shim/config.h"
#include "shim/spin_lock.h"

namespace heapledger::detail {

class LiveTotals {
 public:
  // Where a call site's share of a change goes when it is not kept in a slot (the tracker's
  // adjust_site): the site's own shared counts.
  using SiteSink = void (*)(std::uint32_t stack, std::int64_t bytes, std::int64_t blocks);
  static constexpr std::uint32_t kNoSite = ~std::uint32_t{0};  // a change with no site part
  static constexpr int kSiteEntries = 4;

  // A thread's changes not folded in yet, in its counts' cache lines. The words are written by
  // its thread (compare-and-swap) and by whoever closes it; reserve is set under the lock only.
  // With the totals, up to kSiteEntries call sites' changes (entry: stack id & 3), each entry
  // holding one site's until it is folded: so threads that allocate from one call site share no
  // line for its counts either (two locked adds on one line, on every call, before).
  struct Slot {
    std::atomic<std::uint64_t> word{0};    // 0: closed; else kOpen | blocks | bytes (biased)
    std::atomic<std::int64_t> reserve{0};  // the headroom it holds while open
    Slot* next = nullptr;                  // every slot attached (slots are reused, never freed)
    std::uint32_t countdown = 0;  // its thread's: changes before it asks for headroom again
    // Its thread is inside change() on it. A signal handler there (a program's free while the
    // thread is in the tracker) must not open it: the interrupted compare-and-swap could then
    // succeed on a slot closed and opened again meanwhile (the same word) against less headroom
    // than it checked (a review's, from reading the code).
    std::atomic<bool> changing{false};
    // 0: closed (with the word); else kEntryOpen | stack | blocks | bytes (biased).
    std::atomic<std::uint64_t> sites[kSiteEntries] = {};
  };
  struct Change {
    // The live bytes after the change if `exact`; else the shared total and the calling
    // thread's own slot only: other threads' slots may hold megabytes either way (estimate()).
    std::int64_t live;
    bool exact;  // counted on the shared total with no slot open: a new peak may be made
  };

  // Once for each slot, before its first change.
  void attach(Slot* s);
  void set_site_sink(SiteSink sink) { sink_ = sink; }
  // An allocation (bytes > 0, blocks 1) or a free (bytes < 0, blocks -1) by the thread that owns
  // s (null: no slot, the shared totals); peak: the peak so far (any value it had will do: it
  // only grows, and an older one only closes slots sooner). Takes the lock only to close slots or
  // reserve headroom, and never waits for it on a free: a signal handler's free may interrupt
  // this thread anywhere, inside the lock too.
  // stack: the call site's (kNoSite: none). Its share goes to the slot while the total's does
  // (when the site's entry is free or its own), else to the sink at once; folding a slot gives
  // its entries to the sink, under the lock, before any new peak is made.
  Change change(Slot* s, std::uint32_t stack, std::int64_t bytes, std::int64_t blocks,
                std::int64_t peak);
  // Closes every slot and returns the live totals (the exit report; the start's early blocks).
  void settle(std::int64_t* bytes, std::int64_t* blocks);
  // The live bytes with every open slot's changes read, not folded (the timeline's points):
  // reads every slot's line.
  std::int64_t estimate() const;
  // The thread that owns s is ending: its changes are folded in and its headroom given back.
  void close(Slot* s);
  // Live blocks folded in so far: the live blocks when no slot is open (at a new peak).
  std::int64_t folded_blocks() const { return blocks_.load(std::memory_order_relaxed); }

  void lock() HL_ACQUIRE(lock_) { lock_.lock(); }  // fork: held across it
  void unlock() HL_RELEASE(lock_) { lock_.unlock(); }
  bool lock_held_by_this_thread() const { return lock_.held_by_this_thread(); }

  // Headroom reserved at a time: a quarter of what is left under the peak, within these.
  static constexpr std::int64_t kMinReserve = 1 << 10, kMaxReserve = 1 << 20;
  // A thread without a slot asks for headroom again after this many changes.
  static constexpr std::uint32_t kAskEvery = 64;

 private:
  static constexpr std::uint64_t kOpen = std::uint64_t{1} << 63;
  static constexpr int kBlocksShift = 40;  // bytes in bits 0-39, blocks in bits 40-62
  static constexpr std::int64_t kBytesBias = std::int64_t{1} << 39,
                                kBlocksBias = std::int64_t{1} << 22;
  static constexpr std::uint64_t kAnyOpen = 1;  // shared_'s bit 0

  static std::int64_t bytes_of(std::uint64_t w) {
    return static_cast<std::int64_t>(w & ((std::uint64_t{1} << kBlocksShift) - 1)) - kBytesBias;
  }
  static std::int64_t blocks_of(std::uint64_t w) {
    return static_cast<std::int64_t>((w & ~kOpen) >> kBlocksShift) - kBlocksBias;
  }
  static bool fits(std::int64_t bytes, std::int64_t blocks) {
    return bytes >= -kBytesBias && bytes < kBytesBias && blocks >= -kBlocksBias &&
           blocks < kBlocksBias;
  }
  static std::uint64_t encode(std::int64_t bytes, std::int64_t blocks) {
    return kOpen | static_cast<std::uint64_t>(blocks + kBlocksBias) << kBlocksShift |
           static_cast<std::uint64_t>(bytes + kBytesBias);
  }
  static std::int64_t total(std::uint64_t x) { return static_cast<std::int64_t>(x) >> 1; }

  // A site entry: open bit 63, stack id in bits 42-62, blocks in 28-41, bytes in 0-27 (biased).
  static constexpr std::uint64_t kEntryOpen = std::uint64_t{1} << 63;
  static constexpr int kEntryStackShift = 42, kEntryBlocksShift = 28;
  static constexpr std::int64_t kEntryBytesBias = std::int64_t{1} << 27,
                                kEntryBlocksBias = std::int64_t{1} << 13;
  static std::uint32_t entry_stack(std::uint64_t e) {
    return static_cast<std::uint32_t>((e & ~kEntryOpen) >> kEntryStackShift);
  }
  static std::int64_t entry_bytes(std::uint64_t e) {
    return static_cast<std::int64_t>(e & ((std::uint64_t{1} << kEntryBlocksShift) - 1)) -
           kEntryBytesBias;
  }
  static std::int64_t entry_blocks(std::uint64_t e) {
    return static_cast<std::int64_t>(
               (e >> kEntryBlocksShift) &
               ((std::uint64_t{1} << (kEntryStackShift - kEntryBlocksShift)) - 1)) -
           kEntryBlocksBias;
  }
  static std::uint64_t encode_entry(std::uint32_t stack, std::int64_t bytes, std::int64_t blocks) {
    return kEntryOpen | std::uint64_t{stack} << kEntryStackShift |
           static_cast<std::uint64_t>(blocks + kEntryBlocksBias) << kEntryBlocksShift |
           static_cast<std::uint64_t>(bytes + kEntryBytesBias);
  }
  static bool entry_fits(std::int64_t bytes, std::int64_t blocks) {
    return bytes >= -kEntryBytesBias && bytes < kEntryBytesBias && blocks >= -kEntryBlocksBias &&
           blocks < kEntryBlocksBias;
  }
  // The site's share of a change counted in s: into its entry if that is open and free (no
  // change held) or the site's own, else to the sink.
  void site_change(Slot* s, std::uint32_t stack, std::int64_t bytes, std::int64_t blocks);
  void to_sink(std::uint32_t stack, std::int64_t bytes, std::int64_t blocks) const {
    if (sink_ && stack != kNoSite && (bytes != 0 || blocks != 0)) sink_(stack, bytes, blocks);
  }
  // Under the lock: closes s's entries, giving what they hold to the sink.
  void fold_sites(Slot* s) HL_REQUIRES(lock_);

  Change slot_change(Slot* s, std::uint32_t stack, std::int64_t bytes, std::int64_t blocks,
                     std::int64_t peak, bool nested);
  // may_open: s may be given headroom (not from inside another change() on it).
  Change shared_change(Slot* s, std::uint32_t stack, std::int64_t bytes, std::int64_t blocks,
                       std::int64_t peak, bool may_open);
  void maybe_reserve(Slot* s, std::int64_t peak);
  // Under the lock: folds one slot's changes in (closing it), or every slot's.
  void fold(Slot* s) HL_REQUIRES(lock_);
  void fold_all() HL_REQUIRES(lock_);
  void reserve(Slot* s, std::int64_t peak) HL_REQUIRES(lock_);
  // Adds to the shared total (a compare-and-swap loop), setting bit 0 to `open`.
  void fold_into_shared(std::int64_t bytes, bool open) HL_REQUIRES(lock_);

  SpinLock lock_;
  // (Live bytes folded in + headroom reserved) << 1 | kAnyOpen while any slot is open. Bit 0
  // changes under the lock only.
  alignas(64) std::atomic<std::uint64_t> shared_{0};
  std::atomic<std::int64_t> reserved_{0};  // headroom held by open slots (changed under the lock)
  std::atomic<std::int64_t> blocks_{0};    // live blocks folded in
  std::uint32_t open_ HL_GUARDED_BY(lock_) = 0;
  std::atomic<Slot*> slots_{nullptr};
  SiteSink sink_ = nullptr;
};

}  // namespace heapledger::detail
