// Whether the process has a single thread, by glibc's own flag (<sys/single_threaded.h>): true
// from start-up, cleared for good before the first pthread_create starts a thread. glibc skips
// its own atomics on that test; so do the allocator and tracker.
//
// Why it matters: a locked instruction (lock add, xchg, cmpxchg) waits until every store before it
// has reached the cache, and the program's own stores into fresh memory often miss. Taken as a
// plain load and store, the same update costs nothing extra. With one thread, the only other code
// that can run in between is a signal handler on this same thread, which runs to its end first:
// a lock or a record slot it takes and gives back is found as it was.
#pragma once

#include <sys/single_threaded.h>

#include <atomic>

#include "shim/config.h"

namespace heapledger::detail {

HL_ALWAYS_INLINE bool single_threaded() { return __libc_single_threaded; }

// counter += delta; returns the new value. A signal handler that adds to the same counter between
// the load and the store of the single-threaded path loses its update: use it for statistics only.
template <class T>
HL_ALWAYS_INLINE T add_relaxed(std::atomic<T>& counter, T delta) {
  if (single_threaded()) {
    const T now = counter.load(std::memory_order_relaxed) + delta;
    counter.store(now, std::memory_order_relaxed);
    return now;
  }
  return counter.fetch_add(delta, std::memory_order_relaxed) + delta;
}

}  // namespace heapledger::detail
