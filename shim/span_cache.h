// Freed large-block mappings kept for reuse. A large block is a mapping of its own; unmapping it
// on free and mapping a new one for the next request makes the kernel zero and fault in every
// page again (python3's string builders and list arrays, 36 KiB growing to 192 KiB and freed,
// thousands of times). The cache keeps a bounded number of bytes of such mappings, oldest given
// back first. No lock of its own: the pools keep it under the large-block registry's lock, and
// the exit scan reads it without (copy_settled) with the other threads stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heapledger::detail::pool {

struct Span {
  std::uintptr_t start = 0;
  std::size_t length = 0;  // bytes, a multiple of the page size
  // Bytes from start that its owners may have written (the most any of them asked for); past
  // it the pages were never touched and read zero. A calloc that takes the span clears only these.
  std::size_t written = 0;
};

class SpanCache {
 public:
  static constexpr std::size_t kEntries = 32;
  static constexpr std::size_t kBudget = std::size_t{16} << 20;  // bytes kept at most
  static constexpr std::size_t kMaxSpan = std::size_t{8} << 20;  // larger ones are not kept
  // A request takes a span up to this many times its length: the growing buffers above are freed
  // at several times the size they start at. What it takes beyond the request is resident memory
  // that the cache held anyway.
  static constexpr std::size_t kMaxOverfit = 8;

  // The smallest kept span of at least `length` bytes (and at most kMaxOverfit times that),
  // removed from the cache; a zero span if there is none.
  Span take(std::size_t length) {
    Changing changing(changes_);
    const std::size_t best = best_for(length);
    if (best == kEntries) return {};
    const Span s = spans_[best];
    remove(best);
    return s;
  }

  // Whether take(length) would give a span.
  bool fits(std::size_t length) const { return best_for(length) != kEntries; }

  // Whether a kept span is too short for `length` but at least half of it: the program's large
  // requests are growing past the mappings it freed (see alloc_large).
  bool holds_shorter(std::size_t length) const {
    for (std::size_t i = 0; i < count_; ++i)
      if (spans_[i].length < length && spans_[i].length >= length / 2) return true;
    return false;
  }

  // Keeps s. Writes what the caller must unmap to out (s itself if it is too large to keep, else
  // the oldest spans given back to make room) and returns how many.
  std::size_t put(Span s, Span (&out)[kEntries + 1]) {
    Changing changing(changes_);
    if (s.length > kMaxSpan) {
      out[0] = s;
      return 1;
    }
    std::size_t n = 0;
    while (count_ == kEntries || bytes_ + s.length > kBudget) {
      out[n++] = spans_[0];
      remove(0);
    }
    spans_[count_++] = s;
    bytes_ += s.length;
    return n;
  }

  // Copies up to max of the kept spans into out, oldest first; returns how many are kept.
  std::size_t copy(Span* out, std::size_t max) const {
    for (std::size_t i = 0; i < count_ && i < max; ++i) out[i] = spans_[i];
    return count_;
  }

  // Moves every kept span to out; returns how many.
  std::size_t take_all(Span (&out)[kEntries]) {
    Changing changing(changes_);
    const std::size_t n = copy(out, kEntries);
    count_ = 0;
    bytes_ = 0;
    return n;
  }

  // copy() for a reader that takes no lock, with every other thread stopped: nothing (0) if one
  // of them was stopped while changing the cache (an entry may be half moved), else copy().
  // A thread the stop missed (it timed out) may change it meanwhile: then nothing, too.
  std::size_t copy_settled(Span* out, std::size_t max) const {
    const std::uint32_t before = changes_.load(std::memory_order_acquire);
    if (before & 1) return 0;
    const std::size_t n = copy(out, max);
    std::atomic_thread_fence(std::memory_order_acquire);
    return changes_.load(std::memory_order_relaxed) == before ? n : 0;
  }

  std::size_t bytes() const { return bytes_; }
  std::size_t size() const { return count_; }

 private:
  // The index of the span take(length) gives; kEntries if none.
  std::size_t best_for(std::size_t length) const {
    std::size_t best = kEntries;
    for (std::size_t i = 0; i < count_; ++i) {
      const std::size_t l = spans_[i].length;
      if (l >= length && l / kMaxOverfit <= length && (best == kEntries || l < spans_[best].length))
        best = i;
    }
    return best;
  }

  void remove(std::size_t i) {  // keeps the rest in order, oldest first
    bytes_ -= spans_[i].length;
    for (std::size_t j = i + 1; j < count_; ++j) spans_[j - 1] = spans_[j];
    --count_;
  }

  // Odd while a change is under way: the count goes up before the change and after it, in
  // program order (a stopped thread's stores before its stop are all seen by the reader).
  class Changing {
   public:
    explicit Changing(std::atomic<std::uint32_t>& c) : c_(c) {
      c_.store(c_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    ~Changing() {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      c_.store(c_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    Changing(const Changing&) = delete;
    Changing& operator=(const Changing&) = delete;

   private:
    std::atomic<std::uint32_t>& c_;
  };

  std::atomic<std::uint32_t> changes_{0};
  Span spans_[kEntries]{};
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace heapledger::detail::pool
