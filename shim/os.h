// The only place heapledger asks the OS for memory. Everything above this speaks in reservations
// (address space, no memory) and commits (readable, writable, zero-filled pages).
#pragma once

#include <cstddef>
#include <cstdint>

namespace heapledger::detail::os {

constexpr std::size_t kPageSize = 4096;

// Reserves address space without committing memory; nullptr on failure. unreserve() gives it
// back (reservations count as heapledger's own address space: see space_limit.h).
void* reserve(std::size_t bytes);
void unreserve(void* p, std::size_t bytes);
// Makes [p, p+bytes) of a reservation usable. Returns false if the OS refuses (ENOMEM).
bool commit(void* p, std::size_t bytes);
// Maps fresh zeroed read-write memory anywhere; nullptr on failure.
void* map(std::size_t bytes);
// Same as map() but the result is aligned to `alignment` (a power of two >= kPageSize).
void* map_aligned(std::size_t bytes, std::size_t alignment);
void unmap(void* p, std::size_t bytes);
// Grows or shrinks a mapping, moving it if needed; nullptr on failure (old mapping intact), with
// *no_room (if given) set when the address space had no room for it (ENOMEM), not when the
// mapping cannot move in one piece (split by advice or a lock on part of it).
void* remap(void* p, std::size_t old_bytes, std::size_t new_bytes, bool* no_room = nullptr);
// Undoes what a program may have done to the pages of a block it freed, before they go to the
// next one: its protection (a guard page), and the advice that changes what the program sees
// (left out of a fork's child, wiped in it, left out of core dumps) or how it is paged in
// (MADV_RANDOM, MADV_SEQUENTIAL). Huge-page advice and part-locks stay: a mapping split by
// them may not move in one piece, and realloc then copies. Locks (mlock) stay, as in
// glibc's heap: unlocking would also undo mlockall(MCL_FUTURE). False if the OS refused (part of
// the range is not mapped): then the pages must not be reused.
bool reset_for_reuse(void* p, std::size_t bytes);
// Only the protection: read-write again. False as reset_for_reuse: part of the range is gone.
bool reset_protection(void* p, std::size_t bytes);
// How many times the program changed protection or advice (mprotect, pkey_mprotect, madvise:
// the library exports them to count, shim/mem_api.cc), anywhere. A large block freed with the
// count as it was when the block was handed out needs only reset_protection, one system call
// of reset_for_reuse's five (each takes the process's memory-map lock for writing: with many
// threads they cost more than the block itself). Not counted: calls made with syscall(), or from
// a library bound to libc's own (RTLD_DEEPBIND, dlmopen): the protection, and a hole (a page
// unmapped), are still caught by reset_protection; advice is not. A mapping put over a block
// (mmap with MAP_FIXED) is not caught by either (README, Known limits).
std::uint64_t program_advice_count();
void count_program_advice();
// Tells the OS the pages' contents are no longer needed (they read back as zero, and cost no
// memory). False if it refused (pages the program locked with mlock).
bool discard(void* p, std::size_t bytes);
// One byte per page of [p, p+bytes) (p page-aligned) into pages[]: bit 0 set where the page is
// in memory (mincore). A page not in memory was never touched, or is out in swap. False if the
// OS cannot tell (part of the range is not mapped), or must not be asked: mincore is a system
// call glibc's malloc never makes, and a seccomp filter that allows only those kills the
// process for it (a review's), so it is not made under a filter (note_sandbox_at_start) or
// after the program asked for one through prctl (note_sandbox). A filter installed with a
// raw system call after start is not seen.
bool in_memory(const void* p, std::size_t bytes, unsigned char* pages);
// Reads /proc/self/status once, at the pools' start (or at the first question, if that comes first:
// a program whose first blocks are all large): a seccomp filter, or no_new_privs (which an
// unprivileged process sets before installing one), counts as a sandbox; so does no answer.
void note_sandbox_at_start();
void note_sandbox();
// Whether the process counts as sandboxed (as above): system calls glibc's own paths would not
// make are then not made.
bool sandboxed();
// The number after `key` ("\nSeccomp:") in a /proc status file, read with system calls made
// directly (this may run inside an allocation); -1 if the file or the field is not there.
long status_field(const char* path, const char* key);
// The same for n keys from one read of the file: values[i] for keys[i].
void status_fields(const char* path, const char* const* keys, long* values, int n);

// Faults in committed pages ahead of their first write, in one system call
// (MADV_POPULATE_WRITE, Linux 5.14) where touching them would take a page fault each: a fault
// cost 12 us a page on the VM this was measured on, a 64 KiB prefault 6-7 us a page. Contents
// are left as they are (a page already present is not touched). From the page p is on (any p
// will do). Does nothing where the kernel lacks the advice or refuses (out of memory: the pages
// then fault in when written, as before): false then.
bool prefault(void* p, std::size_t bytes);

// Whether the kernel would read n bytes at p (n <= kPageSize) for a system call: both ends asked of
// the kernel's own copy from user memory (rt_sigprocmask with no valid `how`, which copies the set
// it is given first and changes nothing), with no descriptor and nothing a seccomp filter kills
// for (process_vm_readv may be: systemd's @debug set; and it fails once the main thread has ended:
// a review's). False, errno EFAULT, where it would not.
bool readable(const void* p, std::size_t n);
// Reads n bytes of this process's memory at `from` through /proc/thread-self/mem, as a debugger
// would: false where the address is not mapped, or /proc cannot be opened (not mounted, a process
// that is not dumpable, no descriptor left). For another thread's memory, which may go away.
bool read_own(void* to, const void* from, std::size_t n);
// How much memory filled front to back is faulted in at a time: the pools' fresh blocks, the
// ledger's slots, the tracker's arena (each fault a page where its first write took one).
constexpr std::size_t kPrefaultStep = 64 << 10;

// Memory for heapledger's own tables (ledger, stack table, ...). Like map()/unmap(), but each
// mapping is remembered so the leak scan can skip it: those tables hold every block's address.
void* map_internal(std::size_t bytes);
void unmap_internal(void* p, std::size_t bytes);
// An internal mapping of which only the pages written to ever cost memory (no commit charge, left
// out of core dumps, never huge pages, not locked or faulted in whole by an earlier
// mlockall(MCL_FUTURE)): for tables indexed by address, sized for the worst case and used
// sparsely.
void* map_internal_sparse(std::size_t bytes);
// The same, with no access until make_writable: a program that writes into every writable
// anonymous mapping /proc/self/maps lists (redis' memory test after a crash) faulted in all of
// a 215 GiB table (see BlockRecords).
void* reserve_internal_sparse(std::size_t bytes);
// Read-write, for a part of a reservation (page-aligned). False if the kernel refused.
bool make_writable(void* p, std::size_t bytes);
// Whether such a mapping costs nothing but the pages written: no data limit (ulimit -d, which
// counts a writable mapping whole) and a commit limit that is not strict (overcommit_memory 2
// charges it whole). False when either cannot be read.
bool sparse_mapping_free();
// Bytes of address space the process may still map under its limit (ulimit -v): SIZE_MAX if it
// has none, kSpaceUnknown if it has one but its current size cannot be read (no /proc).
constexpr std::size_t kSpaceUnknown = SIZE_MAX - 1;
std::size_t address_space_left();
// The same for writable private memory under the data limit (ulimit -d), which counts VmData.
std::size_t data_left();
// Address space for one of heapledger's own tables, made usable piece by piece with commit(): so
// it costs memory, and counts against ulimit -d and the commit limit, only as far as it is used.
// Remembered like map_internal; never backed by huge pages (a page in use would cost 2 MiB).
void* reserve_internal(std::size_t bytes);
// commit() for part of a reserve_internal() range, counted as heapledger's own writable memory
// (space_limit.h) for good: for ranges never unmapped (the pools' bitmaps). Takes no lock.
bool commit_internal(void* p, std::size_t bytes);
// Runs fn(arg) on a stack of its own of `bytes` (an internal mapping, so the leak scan skips it,
// with a guard page at its low end), then comes back to this one. For work that needs more
// stack than the calling thread may have left: the exit report, from a thread created with a
// small stack or a signal handler on its alternate stack. False (fn not run) if no such stack
// could be mapped.
bool run_on_own_stack(std::size_t bytes, void (*fn)(void*), void* arg);
struct Range {
  void* start;
  std::size_t bytes;
};
// fork: the registry's lock is held across fork().
void internal_prefork();
void internal_postfork();
bool internal_lock_held();

// Copies up to `max` live internal mappings into out; returns how many there are.
std::size_t internal_ranges(Range* out, std::size_t max);
// Calls fn(from, to, arg) for each part of [lo, hi) outside the internal mappings, in address
// order. fn runs without the registry's lock.
void for_each_outside_internal(std::uintptr_t lo, std::uintptr_t hi,
                               void (*fn)(std::uintptr_t, std::uintptr_t, void*), void* arg);

// Whether the program's later memory is to be locked (its mlockall(MCL_FUTURE) is in force: see
// shim/mem_api.cc; in this process only, not a child forked since). The kernel locks new
// mappings then, but the pools make memory usable inside a reservation made before:
// lock_if_future() locks such a range as it is used (MLOCK_ONFAULT).
void set_lock_future(bool on);
bool lock_future_set();
void lock_if_future(void* p, std::size_t bytes);

}  // namespace heapledger::detail::os
