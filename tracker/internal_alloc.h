// Memory for the tracker's own long-lived data (stack records, module paths): a bump arena over
// pages mapped through shim/os.h. Never from the tracked heap, never freed, lock per chunk refill.
#pragma once

#include <cstddef>

namespace heapledger::detail {

// 16-byte aligned, zero-filled; nullptr if the OS refuses memory.
void* internal_alloc(std::size_t bytes);

// fork: the arena's lock is held across fork().
void internal_alloc_prefork();
void internal_alloc_postfork();
bool internal_alloc_lock_held();

// Total bytes the arena has mapped (tracker overhead accounting).
std::size_t internal_mapped_bytes();

}  // namespace heapledger::detail
