// A small lock for short critical sections inside the allocator and tracker. Unlike
// std::mutex it is trivially constructible (usable before any constructor ran) and never allocates.
#pragma once

#include <sched.h>

#include <atomic>

#include "shim/config.h"

namespace heapledger::detail {

class HL_CAPABILITY("mutex") SpinLock {
 public:
  void lock() HL_ACQUIRE() {
    if (HL_LIKELY(!locked_.exchange(true, std::memory_order_acquire))) return;
    lock_slow();
  }
  bool try_lock() { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() HL_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  // Contended: spin briefly, then yield so a descheduled holder can run (2-core machines).
  HL_NOINLINE void lock_slow() {
    for (unsigned spins = 0;; ++spins) {
      if (!locked_.load(std::memory_order_relaxed) &&
          !locked_.exchange(true, std::memory_order_acquire))
        return;
      if (spins < 64)
        __builtin_ia32_pause();
      else
        sched_yield();
    }
  }
  std::atomic<bool> locked_{false};
};

class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~SpinGuard() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace heapledger::detail
