// A small lock for short critical sections inside the allocator and tracker. Unlike
// std::mutex it is trivially constructible (usable before any constructor ran) and never allocates.
#pragma once

#include <atomic>

#include "shim/config.h"
#include "shim/kernel_call.h"
#include "shim/single_thread.h"

namespace heapledger::detail {

// Its address names the current thread (no system call, no allocation).
inline thread_local char tl_thread_token HL_TLS;

// The lock word is the holder's thread token, so taking the lock and naming its holder are one
// atomic step: a signal handler that runs exit() on the holding thread, at whatever instruction it
// interrupted, sees either a free lock or one held by its own thread, never a held lock with no
// holder (which the exit report would wait for forever).
class HL_CAPABILITY("mutex") SpinLock {
 public:
  void lock() HL_ACQUIRE() {
    if (HL_UNLIKELY(!try_lock())) lock_slow();
  }
  bool try_lock() {
    if (single_threaded()) {  // see single_thread.h: a handler that takes it gives it back first
      if (owner_.load(std::memory_order_relaxed) != nullptr) return false;
      owner_.store(&tl_thread_token, std::memory_order_relaxed);
      return true;
    }
    const char* none = nullptr;
    return owner_.compare_exchange_strong(none, &tl_thread_token, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void unlock() HL_RELEASE() { owner_.store(nullptr, std::memory_order_release); }
  // True while the calling thread holds it: exit() from a signal handler that interrupted the
  // allocator must not wait for a lock its own thread will never release.
  bool held_by_this_thread() const {
    return owner_.load(std::memory_order_relaxed) == &tl_thread_token;
  }

 private:
  // Contended: spin briefly, then yield so a descheduled holder can run (2-core machines).
  HL_NOINLINE void lock_slow() {
    for (unsigned spins = 0;; ++spins) {
      if (!owner_.load(std::memory_order_relaxed) && try_lock()) return;
      if (spins < 64)
        __builtin_ia32_pause();
      else
        os::yield_cpu();
    }
  }
  std::atomic<const char*> owner_{nullptr};
};

// Takes the lock unless the calling thread already holds it, which can only mean a signal handler
// (calling exit()) interrupted that thread inside the critical section: then the caller gives up
// (fails the allocation, leaks the block) instead of waiting for itself forever.
class TryGuard {
 public:
  explicit TryGuard(SpinLock& l) : l_(l), held_(!l.held_by_this_thread()) {
    if (held_) l_.lock();
  }
  ~TryGuard() {
    if (held_) l_.unlock();
  }
  explicit operator bool() const { return held_; }
  TryGuard(const TryGuard&) = delete;
  TryGuard& operator=(const TryGuard&) = delete;

 private:
  SpinLock& l_;
  bool held_;
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
