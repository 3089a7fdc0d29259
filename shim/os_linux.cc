// Linux implementation of shim/os.h: mmap, mprotect, mremap, madvise. errno is preserved on
// success paths so callers see the program's own errno unchanged.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "shim/errno_keeper.h"
#include "shim/kernel_call.h"
#include "shim/os.h"
#include "shim/space_limit.h"
#include "shim/spin_lock.h"

namespace heapledger::detail::os {
namespace {

// The library exports mprotect, pkey_mprotect and madvise to count the program's calls (see
// shim/mem_api.cc): its own go to the kernel directly.
// All of them go through kernel_call (see kernel_call.h): this runs on the program's threads.
long sys(long number, const void* p, std::size_t bytes, long c = 0, long d = 0) {
  return kernel_call_errno(number, reinterpret_cast<long>(p), static_cast<long>(bytes), c, d);
}
int sys_mprotect(void* p, std::size_t bytes, int prot) {
  return static_cast<int>(sys(SYS_mprotect, p, bytes, prot));
}
int sys_madvise(void* p, std::size_t bytes, int advice) {
  return static_cast<int>(sys(SYS_madvise, p, bytes, advice));
}

constinit std::atomic<std::uint64_t> g_program_advice{0};

// Removes guard pages (MADV_GUARD_INSTALL, Linux 6.13), which reading or writing kills the
// process over; not in Debian 12's headers.
constexpr int kMadvGuardRemove = 103;

void* checked(void* p) { return p == MAP_FAILED ? nullptr : p; }

// The registry behind map_internal: a fixed array, so recording a mapping never allocates.
constexpr std::size_t kMaxInternal = 8192;
SpinLock g_internal_lock;
Range g_internal[kMaxInternal] HL_GUARDED_BY(g_internal_lock);
std::size_t g_internal_data[kMaxInternal] HL_GUARDED_BY(g_internal_lock);  // writable bytes of each
std::size_t g_internal_count HL_GUARDED_BY(g_internal_lock) = 0;

// Counts a mapping of heapledger's own (space_limit.h): before it is made, so that a limit the
// program set moves up first; made(p) takes the count back if p is null.
class OwnSpace {
 public:
  OwnSpace(std::size_t bytes, std::size_t data) : bytes_(bytes), data_(data) {
    space_limit::grow(bytes, data);
  }
  void* made(void* p) {
    if (!p) space_limit::shrink(bytes_, data_);
    return p;
  }

 private:
  std::size_t bytes_, data_;
};

}  // namespace

void* reserve(std::size_t bytes) {
  ErrnoKeeper keep;
  OwnSpace own(bytes, 0);
  return own.made(
      checked(mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)));
}

void unreserve(void* p, std::size_t bytes) {
  unmap(p, bytes);
  space_limit::shrink(bytes, 0);
}

bool commit(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  return sys_mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0;
}

void* map(std::size_t bytes) {
  ErrnoKeeper keep;
  return checked(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

void* map_aligned(std::size_t bytes, std::size_t alignment) {
  if (alignment <= kPageSize) return map(bytes);
  std::size_t span = bytes + alignment;
  if (span < bytes) return nullptr;
  auto* raw = static_cast<char*>(map(span));
  if (!raw) return nullptr;
  auto addr = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = (addr + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
  std::size_t head = aligned - addr;
  std::size_t tail = span - head - bytes;
  if (head) unmap(raw, head);
  if (tail) unmap(reinterpret_cast<char*>(aligned) + bytes, tail);
  return reinterpret_cast<void*>(aligned);
}

void unmap(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  sys(SYS_munmap, p, bytes);
}

void* remap(void* p, std::size_t old_bytes, std::size_t new_bytes, bool* no_room) {
  ErrnoKeeper keep;
  const long moved = sys(SYS_mremap, p, old_bytes, static_cast<long>(new_bytes), MREMAP_MAYMOVE);
  void* q = moved == -1 ? nullptr : reinterpret_cast<void*>(moved);
  if (no_room) *no_room = !q && errno == ENOMEM;
  return q;
}

bool reset_for_reuse(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  if (sys_mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) return false;
  // EINVAL: a kernel without that advice (MADV_KEEPONFORK came in 4.14, guard pages in 6.13), so
  // never given.
  for (int advice : {MADV_NORMAL, MADV_DOFORK, MADV_KEEPONFORK, MADV_DODUMP, kMadvGuardRemove})
    if (sys_madvise(p, bytes, advice) != 0 && errno != EINVAL) return false;
  return true;
}

bool reset_protection(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  return sys_mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0;
}

bool discard(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  return sys_madvise(p, bytes, MADV_DONTNEED) == 0;
}

void status_fields(const char* path, const char* const* keys, long* values, int n) {
  ErrnoKeeper keep;
  for (int i = 0; i < n; ++i) values[i] = -1;
  // System calls made directly: this may run inside an allocation.
  const long fd =
      kernel_call(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char text[4096];
  std::size_t used = 0;
  for (long got; used + 1 < sizeof text &&
                 (got = kernel_call(SYS_read, fd, reinterpret_cast<long>(text + used),
                                    static_cast<long>(sizeof text - 1 - used))) > 0;)
    used += static_cast<std::size_t>(got);
  kernel_call(SYS_close, fd);
  text[used] = 0;
  for (int i = 0; i < n; ++i) {
    const char* at = std::strstr(text, keys[i]);
    if (!at) continue;
    const char* number = at + std::strlen(keys[i]);
    char* end = nullptr;
    const long value = std::strtol(number, &end, 10);
    if (end != number) values[i] = value;
  }
}

long status_field(const char* path, const char* key) {
  long value;
  status_fields(path, &key, &value, 1);
  return value;
}

namespace {
// -1: not read yet (read at the pools' start, or at the first question if that comes first).
constinit std::atomic<int> g_sandboxed{-1};
}  // namespace

void note_sandbox_at_start() {
  // No answer (-1) counts as a filter.
  const char* const keys[] = {"\nSeccomp:", "\nNoNewPrivs:"};
  long values[2];
  status_fields("/proc/self/status", keys, values, 2);
  const bool filtered = values[0] != 0 || values[1] != 0;
  int unknown = -1;  // a prctl meanwhile has the last word
  g_sandboxed.compare_exchange_strong(unknown, filtered ? 1 : 0, std::memory_order_relaxed);
}

void note_sandbox() { g_sandboxed.store(1, std::memory_order_relaxed); }

bool sandboxed() {
  if (g_sandboxed.load(std::memory_order_relaxed) < 0) note_sandbox_at_start();
  return g_sandboxed.load(std::memory_order_relaxed) != 0;
}

bool in_memory(const void* p, std::size_t bytes, unsigned char* pages) {
  if (sandboxed()) return false;
  return kernel_call(SYS_mincore, reinterpret_cast<long>(p), static_cast<long>(bytes),
                     reinterpret_cast<long>(pages)) == 0;
}

// Not in Debian 12's headers (glibc 2.36).
constexpr int kMadvPopulateWrite = 23;
constinit std::atomic<bool> g_no_prefault{false};  // the kernel lacks the advice, or refuses it

bool readable(const void* p, std::size_t n) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  constexpr long kNoSuchHow = 99;
  for (const std::uintptr_t word : {at, at + (n >= 8 ? n - 8 : 0)}) {
    // EINVAL after the copy (the `how` is checked once the set is read), EFAULT before it.
    if (kernel_call(SYS_rt_sigprocmask, kNoSuchHow, static_cast<long>(word), 0, 8) == -EFAULT) {
      errno = EFAULT;
      return false;
    }
  }
  return true;
}

bool read_own(void* to, const void* from, std::size_t n) {
  const long fd = kernel_call(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/thread-self/mem"),
                              O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const long done = kernel_call(SYS_pread64, fd, reinterpret_cast<long>(to), static_cast<long>(n),
                                reinterpret_cast<long>(from));
  kernel_call(SYS_close, fd);
  return done == static_cast<long>(n);
}

bool prefault(void* p, std::size_t bytes) {
  if (g_no_prefault.load(std::memory_order_relaxed)) return false;
  // From the page p is on: madvise takes page-aligned addresses only, and its EINVAL for one that
  // is not (a thread's memo, from inside a page of the tracker's arena) was taken for a kernel
  // without the advice, which turned prefaulting off for the whole process (a review's: a second
  // thread, and a program's fresh heap pages took 12,237 faults where they had taken 1,126).
  // The advice leaves contents as they are, so the part of the page before p is not touched.
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t from = at & ~(kPageSize - 1);
  p = reinterpret_cast<void*>(from);
  bytes += at - from;
  ErrnoKeeper keep;
  if (sys_madvise(p, bytes, kMadvPopulateWrite) == 0) return true;
  // EPERM, ENOSYS: a seccomp filter that refuses it; EINVAL: a kernel without the advice, or a
  // page in the range the program made not writable meanwhile: asked with no length, such a
  // kernel still says EINVAL (the advice is checked first). Not asked again then. Anything else
  // (out of memory) is for this call only.
  const int error = errno;
  if (error == EPERM || error == ENOSYS ||
      (error == EINVAL && sys_madvise(p, 0, kMadvPopulateWrite) != 0))
    g_no_prefault.store(true, std::memory_order_relaxed);
  return false;
}

namespace {

void* remember_internal(void* p, std::size_t bytes, std::size_t data) {
  if (!p) return nullptr;
  SpinGuard guard(g_internal_lock);
  if (g_internal_count < kMaxInternal) {
    g_internal_data[g_internal_count] = data;
    g_internal[g_internal_count++] = Range{p, bytes};
  }
  return p;
}

}  // namespace

void* map_internal(std::size_t bytes) {
  OwnSpace own(bytes, bytes);
  return remember_internal(own.made(map(bytes)), bytes, bytes);
}

void* reserve_internal_sparse(std::size_t bytes) {
  ErrnoKeeper keep;
  OwnSpace own(bytes, 0);  // writable: as made so (make_writable)
  // Mapped without access, and remembered then: after the program's mlockall(MCL_FUTURE) a new
  // mapping is locked, and one made writable would be faulted in whole (about 215 GiB);
  // unlocked before it is made writable, it is not. An mlockall meanwhile passes it over.
  void* p =
      remember_internal(own.made(checked(mmap(nullptr, bytes, PROT_NONE,
                                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0))),
                        bytes, 0);
  if (!p) return nullptr;
  sys(SYS_munlock, p, bytes);
  sys_madvise(p, bytes, MADV_DONTDUMP);
  // Sparse: a huge page would cost 2 MiB per entry in use.
  sys_madvise(p, bytes, MADV_NOHUGEPAGE);
  return p;
}

// Counted as heapledger's own data first (a data limit the program set moves up by as much),
// and with the internal mapping it is part of, which gives it back when unmapped.
bool make_writable(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  space_limit::grow(0, bytes);
  if (sys_mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) {
    space_limit::shrink(0, bytes);
    return false;
  }
  SpinGuard guard(g_internal_lock);
  for (std::size_t i = 0; i < g_internal_count; ++i) {
    const auto at = static_cast<char*>(p) - static_cast<char*>(g_internal[i].start);
    if (at >= 0 && static_cast<std::size_t>(at) < g_internal[i].bytes) g_internal_data[i] += bytes;
  }
  return true;
}

void* map_internal_sparse(std::size_t bytes) {
  void* p = reserve_internal_sparse(bytes);
  if (p && !make_writable(p, bytes)) {
    unmap_internal(p, bytes);
    return nullptr;
  }
  return p;
}

bool sparse_mapping_free() {
  ErrnoKeeper keep;
  rlimit data;
  if (kernel_call(SYS_prlimit64, 0, RLIMIT_DATA, 0, reinterpret_cast<long>(&data)) != 0 ||
      data.rlim_cur != RLIM_INFINITY)
    return false;
  const long mode = status_field("/proc/sys/vm/overcommit_memory", "");  // the file is one number
  return mode == 0 || mode == 1;
}

namespace {
// What is left under the soft limit `resource`, counted by the /proc/self/status field `vm_field`
// (in KiB): SIZE_MAX without a limit, kSpaceUnknown with one but no /proc.
std::size_t limit_left(int resource, const char* vm_field) {
  ErrnoKeeper keep;
  rlimit limit;
  if (kernel_call(SYS_prlimit64, 0, resource, 0, reinterpret_cast<long>(&limit)) != 0 ||
      limit.rlim_cur == RLIM_INFINITY)
    return SIZE_MAX;
  const long kib = status_field("/proc/self/status", vm_field);
  if (kib < 0) return kSpaceUnknown;
  const std::size_t used = static_cast<std::size_t>(kib) << 10;
  return used < limit.rlim_cur ? limit.rlim_cur - used : 0;
}
}  // namespace

std::size_t address_space_left() { return limit_left(RLIMIT_AS, "\nVmSize:"); }
std::size_t data_left() { return limit_left(RLIMIT_DATA, "\nVmData:"); }

void* reserve_internal(std::size_t bytes) {
  ErrnoKeeper keep;
  void* p = reserve(bytes);
  if (p) {
    sys_madvise(p, bytes, MADV_NOHUGEPAGE);
    sys_madvise(p, bytes, MADV_DONTDUMP);
  }
  return remember_internal(p, bytes, 0);
}

void unmap_internal(void* p, std::size_t bytes) {
  std::size_t data = bytes;  // not remembered (the registry was full): a map_internal's
  {
    SpinGuard guard(g_internal_lock);
    for (std::size_t i = 0; i < g_internal_count; ++i)
      if (g_internal[i].start == p) {
        data = g_internal_data[i];
        --g_internal_count;
        g_internal[i] = g_internal[g_internal_count];
        g_internal_data[i] = g_internal_data[g_internal_count];
        break;
      }
  }
  unmap(p, bytes);
  space_limit::shrink(bytes, data);
}

// No lock: the pools commit their bitmaps while carving blocks, also in a signal handler that
// interrupted this thread inside the registry (waiting for its lock there hung two threads, each
// in such a handler). So the registry does not learn of it, and an unmap_internal() of the range
// would not give it back: the pools' bitmaps live as long as the process.
bool commit_internal(void* p, std::size_t bytes) {
  space_limit::grow(0, bytes);
  if (commit(p, bytes)) return true;
  space_limit::shrink(0, bytes);
  return false;
}

std::uint64_t program_advice_count() { return g_program_advice.load(std::memory_order_acquire); }
void count_program_advice() { g_program_advice.fetch_add(1, std::memory_order_acq_rel); }

void internal_prefork() {
  space_limit::prefork();
  g_internal_lock.lock();
}
void internal_postfork() {
  g_internal_lock.unlock();
  space_limit::postfork();
}
bool internal_lock_held() { return g_internal_lock.held_by_this_thread(); }

namespace {

struct StackJob {
  void (*fn)(void*);
  void* arg;
};

struct OwnStackHeader {
  ucontext_t back, own;
  sigset_t saved;
  StackJob job;
};

// makecontext passes int arguments: the job's address in two halves.
void run_stack_job(unsigned hi, unsigned lo) {
  auto* job = reinterpret_cast<StackJob*>(std::uintptr_t{hi} << 32 | lo);
  job->fn(job->arg);
}

}  // namespace

bool run_on_own_stack(std::size_t bytes, void (*fn)(void*), void* arg) {
  bytes = (bytes + kPageSize - 1) & ~(kPageSize - 1);
  // Only the pages it touches cost memory. The guard page at the low end; the two contexts
  // (about 2 KiB) at the high end, above the stack, not in this frame: the caller may be short
  // of stack (a crash with 8 KiB of a 16 KiB thread stack used).
  const std::size_t header = (sizeof(OwnStackHeader) + kPageSize - 1) & ~(kPageSize - 1);
  char* base = static_cast<char*>(map_internal_sparse(kPageSize + bytes + header));
  if (!base) return false;
  if (sys_mprotect(base, kPageSize, PROT_NONE) != 0) {
    unmap_internal(base, kPageSize + bytes + header);
    return false;
  }
  auto* h = reinterpret_cast<OwnStackHeader*>(base + kPageSize + bytes);
  h->job = StackJob{fn, arg};
  bool ran = false;
  // Called on the thread's alternate signal stack (exit() from an SA_ONSTACK handler): off it,
  // the kernel delivers the next such signal at its top, over the live frames of that handler
  // and of this function, and the way back came through a clobbered context (a crash after the
  // report). Asynchronous signals wait until this thread is back on it; faults do not. Blocked
  // here, not in the contexts: setcontext() unblocks before it switches stacks.
  stack_t alternate;
  const bool on_alternate =
      kernel_call(SYS_sigaltstack, 0, reinterpret_cast<long>(&alternate)) == 0 &&
      (alternate.ss_flags & SS_ONSTACK);
  if (on_alternate) {
    sigset_t blocked;
    sigfillset(&blocked);
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS}) sigdelset(&blocked, sig);
    pthread_sigmask(SIG_BLOCK, &blocked, &h->saved);
  }
  if (getcontext(&h->own) == 0) {
    h->own.uc_stack.ss_sp = base + kPageSize;
    h->own.uc_stack.ss_size = bytes;
    h->own.uc_link = &h->back;
    const auto where = reinterpret_cast<std::uintptr_t>(&h->job);
    makecontext(&h->own, reinterpret_cast<void (*)()>(run_stack_job), 2,
                static_cast<unsigned>(where >> 32), static_cast<unsigned>(where));
    ran = swapcontext(&h->back, &h->own) == 0;
  }
  if (on_alternate) pthread_sigmask(SIG_SETMASK, &h->saved, nullptr);
  unmap_internal(base, kPageSize + bytes + header);
  return ran;
}

void for_each_outside_internal(std::uintptr_t lo, std::uintptr_t hi,
                               void (*fn)(std::uintptr_t, std::uintptr_t, void*), void* arg) {
  // A batch at a time: the (up to) 64 internal mappings in [at, hi) that start lowest, in
  // address order, then the gaps between them; the next batch from the end of the last.
  constexpr std::size_t kBatch = 64;
  std::uintptr_t starts[kBatch], ends[kBatch];
  for (std::uintptr_t at = lo; at < hi;) {
    std::size_t n = 0;
    {
      SpinGuard guard(g_internal_lock);
      for (std::size_t i = 0; i < g_internal_count; ++i) {
        const auto start = reinterpret_cast<std::uintptr_t>(g_internal[i].start);
        const std::uintptr_t end = start + g_internal[i].bytes;
        if (at >= end || start >= hi) continue;
        if (n == kBatch && start >= starts[n - 1]) continue;
        std::size_t k = n < kBatch ? n++ : n - 1;  // insert in order; a full batch drops its last
        for (; k > 0 && starts[k - 1] > start; --k)
          starts[k] = starts[k - 1], ends[k] = ends[k - 1];
        starts[k] = start, ends[k] = end;
      }
    }
    for (std::size_t i = 0; i < n && at < hi; ++i) {
      if (starts[i] > at) fn(at, std::min(starts[i], hi), arg);
      at = std::max(at, ends[i]);
    }
    if (n < kBatch) {  // no more inside
      if (at < hi) fn(at, hi, arg);
      return;
    }
  }
}

namespace {
// The process that asked for its later memory to be locked (0: none). A child forked or cloned
// since does not have it: the kernel gives a new process none of its parent's locks.
constinit std::atomic<long> g_lock_future_pid{0};
}  // namespace

void set_lock_future(bool on) {
  g_lock_future_pid.store(on ? kernel_call(SYS_getpid) : 0, std::memory_order_seq_cst);
}
bool lock_future_set() {
  const long pid = g_lock_future_pid.load(std::memory_order_relaxed);
  return pid != 0 && pid == kernel_call(SYS_getpid);
}

void lock_if_future(void* p, std::size_t bytes) {
  if (g_lock_future_pid.load(std::memory_order_relaxed) == 0 || !lock_future_set()) return;
  ErrnoKeeper keep;
  sys(SYS_mlock2, p, bytes, MLOCK_ONFAULT);
  // A munlockall meanwhile (it clears the mark first) must not leave this range locked.
  if (g_lock_future_pid.load(std::memory_order_seq_cst) == 0) sys(SYS_munlock, p, bytes);
}

std::size_t internal_ranges(Range* out, std::size_t max) {
  SpinGuard guard(g_internal_lock);
  for (std::size_t i = 0; i < g_internal_count && i < max; ++i) out[i] = g_internal[i];
  return g_internal_count;
}

}  // namespace heapledger::detail::os
