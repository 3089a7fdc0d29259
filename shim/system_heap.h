// The C library's allocator, where the pools cannot be had: under an address-space limit
// (ulimit -v) that leaves too little room for even their smallest region, the program's blocks
// come from the C library's allocator (glibc's, found in libc.so.6 itself), untracked, and
// the program runs as it would without heapledger. Before, its first malloc failed: python3 could
// not start under ulimit -v 2600000, dash went round its out-of-memory path.
//
// The pools choose once, at their first use; without a region, the C library's allocator serves
// from the library's constructor on (mappings of their own before: dlsym may not work yet). It
// also serves an untracked program's small blocks once their class is used up. Its blocks are
// never in the pools' region or their registry of large blocks, so a free finds its owner by the
// address alone.
#pragma once

#include <cstddef>

namespace heapledger::detail::system_heap {

// Finds the C library's allocator (once; any thread may call): true once it serves. False while
// this thread is finding it (dlsym may allocate: the pools serve those blocks from mappings of
// their own) or if it cannot be found.
bool start();
bool on();
bool finding();  // this thread is inside start()
// Whether alloc() ever handed out a block: only then is a pointer the pools do not own taken for
// one of its blocks (else it is left alone, as before: a block of an allocator the program
// brought, freed through us, must not reach glibc's free).
bool served();

// Only once on(). align: a power of two.
void* alloc(std::size_t size, std::size_t align, bool zeroed);
void release(void* p);
std::size_t usable_size(void* p);
void* realloc(void* p, std::size_t size);
// malloc_trim and mallopt of the C library, whether or not its allocator serves (any time after
// the library's constructor): its mallopt checks the parameter as the program expects (0 for
// one out of range), and its trim gives back what its heap does not use (nothing, where it never
// served). Where the C library's cannot be found: 0 and 1.
int trim(std::size_t pad);
// Looks up the C library's malloc_trim and mallopt for the two above: from the tracker's start.
void resolve_options();
int set_option(int param, int value);

}  // namespace heapledger::detail::system_heap
