// The tracker's face to the shim: record an allocation, record a release, start, finish.
// Everything here may be called from any thread, at any point of the process's life, and from
// inside the tracker itself (then it only keeps the ledger consistent and records nothing).
#pragma once

#include <atomic>
#include <cstddef>

#include "shim/config.h"
#include "tracker/alloc_kind.h"

namespace heapledger::detail::tracker {

// True once start() has set tracking up (and track=1). Read on every entry point.
extern std::atomic<bool> g_active;
HL_ALWAYS_INLINE bool active() { return g_active.load(std::memory_order_relaxed); }

void on_alloc(void* p, std::size_t size, AllocKind kind);
void on_free(void* p, AllocKind kind);

// Library constructor: options, runtime, warm-up. Safe to call more than once.
void start();
// Writes the exit report once per process (a forked child writes its own).
void finish();

void prefork();
void postfork_parent();
void postfork_child();

}  // namespace heapledger::detail::tracker
