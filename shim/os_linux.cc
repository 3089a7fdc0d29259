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

#include "shim/os.h"
#include "shim/spin_lock.h"

namespace heapledger::detail::os {
namespace {

// The library exports mprotect, pkey_mprotect and madvise to count the program's calls (see
// shim/mem_api.cc): its own go to the kernel directly.
int sys_mprotect(void* p, std::size_t bytes, int prot) {
  return static_cast<int>(syscall(SYS_mprotect, p, bytes, prot));
}
int sys_madvise(void* p, std::size_t bytes, int advice) {
  return static_cast<int>(syscall(SYS_madvise, p, bytes, advice));
}

constinit std::atomic<std::uint64_t> g_program_advice{0};

// Removes guard pages (MADV_GUARD_INSTALL, Linux 6.13), which reading or writing kills the
// process over; not in Debian 12's headers.
constexpr int kMadvGuardRemove = 103;

// mmap/munmap may set errno even on success paths we ignore; the program must not notice.
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }

 private:
  int saved_;
};

void* checked(void* p) { return p == MAP_FAILED ? nullptr : p; }

// The registry behind map_internal: a fixed array, so recording a mapping never allocates.
constexpr std::size_t kMaxInternal = 8192;
SpinLock g_internal_lock;
Range g_internal[kMaxInternal] HL_GUARDED_BY(g_internal_lock);
std::size_t g_internal_count HL_GUARDED_BY(g_internal_lock) = 0;

// The address-space limit as the program sees it (os.h, set_space_limit). The kernel holds the
// program's limits lifted: the soft one by the address space heapledger holds now (kept up to
// date as that grows, so the program's own mappings get what it allowed them), the hard one by a
// lift fixed when the program first lowers it (an unprivileged process cannot raise its hard
// limit again): what heapledger held then and kHardHeadroom for its growth after (its tables,
// the exit report's stack and the reporter module).
constexpr std::size_t kHardHeadroom = std::size_t{4} << 30;

constinit std::atomic<std::size_t> g_own_space{0};  // reservations and internal mappings

struct SpaceLimit {
  bool lifted = false;  // the program set its own limit since start
  bool raised = false;  // the exit report's room (raise_space_limit) is open
  rlimit program{};     // what it set
  rlimit kernel{};      // what the kernel was given for it
  std::size_t hard_lift = 0;
};
SpinLock g_limit_lock;
SpaceLimit g_limit HL_GUARDED_BY(g_limit_lock);
constinit std::atomic<bool> g_limit_lifted{false};  // g_limit.lifted, read without the lock

long sys_prlimit(const rlimit* set, rlimit* get) {
  return syscall(SYS_prlimit64, 0, RLIMIT_AS, set, get);
}

rlim_t plus(rlim_t v, std::size_t by) {
  return v == RLIM_INFINITY || v >= RLIM_INFINITY - by ? RLIM_INFINITY : v + by;
}

// The kernel's soft limit for the program's: its own plus what heapledger holds, within the hard.
rlim_t lifted_soft(rlim_t program_soft, rlim_t kernel_hard) {
  return std::min(plus(program_soft, g_own_space.load(std::memory_order_relaxed)), kernel_hard);
}

// heapledger's address space grows (or shrinks) by `bytes`: where the program set its own limit,
// the kernel's soft one moves with it, before the mapping is made.
void lift_by_own_space() HL_REQUIRES(g_limit_lock) {
  if (!g_limit.lifted || g_limit.raised || g_limit.program.rlim_cur == RLIM_INFINITY) return;
  rlimit now{lifted_soft(g_limit.program.rlim_cur, g_limit.kernel.rlim_max),
             g_limit.kernel.rlim_max};
  if (now.rlim_cur == g_limit.kernel.rlim_cur || sys_prlimit(&now, nullptr) != 0) return;
  g_limit.kernel = now;
}

// Counts a mapping of heapledger's own: made(p) keeps it counted if p is not null.
class OwnSpace {
 public:
  explicit OwnSpace(std::size_t bytes) : bytes_(bytes) {
    adjust(static_cast<std::ptrdiff_t>(bytes));
  }
  void* made(void* p) {
    if (!p) adjust(-static_cast<std::ptrdiff_t>(bytes_));
    return p;
  }
  static void given_back(std::size_t bytes) { adjust(-static_cast<std::ptrdiff_t>(bytes)); }

 private:
  static void adjust(std::ptrdiff_t bytes) {
    g_own_space.fetch_add(static_cast<std::size_t>(bytes), std::memory_order_relaxed);
    if (!g_limit_lifted.load(std::memory_order_acquire)) return;
    TryGuard guard(g_limit_lock);  // held by this thread: a handler's mapping, counted, not lifted
    if (guard) lift_by_own_space();
  }
  std::size_t bytes_;
};

}  // namespace

void* reserve(std::size_t bytes) {
  ErrnoKeeper keep;
  OwnSpace own(bytes);
  return own.made(
      checked(mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)));
}

void unreserve(void* p, std::size_t bytes) {
  unmap(p, bytes);
  OwnSpace::given_back(bytes);
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
  munmap(p, bytes);
}

void* remap(void* p, std::size_t old_bytes, std::size_t new_bytes, bool* no_room) {
  ErrnoKeeper keep;
  void* q = checked(mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE));
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

namespace {

void* remember_internal(void* p, std::size_t bytes) {
  if (!p) return nullptr;
  SpinGuard guard(g_internal_lock);
  if (g_internal_count < kMaxInternal) g_internal[g_internal_count++] = Range{p, bytes};
  return p;
}

}  // namespace

void* map_internal(std::size_t bytes) {
  OwnSpace own(bytes);
  return remember_internal(own.made(map(bytes)), bytes);
}

void* map_internal_sparse(std::size_t bytes) {
  ErrnoKeeper keep;
  OwnSpace own(bytes);
  void* p = own.made(checked(mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)));
  if (p) {
    sys_madvise(p, bytes, MADV_DONTDUMP);
    // Sparse: a huge page would cost 2 MiB per entry in use.
    sys_madvise(p, bytes, MADV_NOHUGEPAGE);
  }
  return remember_internal(p, bytes);
}

// System calls made directly: this runs inside an allocation, and another preloaded tool's
// open() or read() might allocate.
std::size_t address_space_left() {
  ErrnoKeeper keep;
  rlimit limit;
  if (syscall(SYS_prlimit64, 0, RLIMIT_AS, nullptr, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return SIZE_MAX;
  // The first field of statm is the process's size in pages.
  const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kSpaceUnknown;  // a limit, and no telling what is left of it (no /proc)
  char text[64];
  const long n = syscall(SYS_read, fd, text, sizeof text - 1);
  syscall(SYS_close, fd);
  if (n <= 0 || text[0] < '0' || text[0] > '9') return kSpaceUnknown;
  std::size_t pages = 0;
  for (long i = 0; i < n && text[i] >= '0' && text[i] <= '9'; ++i)
    pages = pages * 10 + (text[i] - '0');
  const std::size_t used = pages * kPageSize;
  return used < limit.rlim_cur ? limit.rlim_cur - used : 0;
}

int set_space_limit(const rlimit* want, rlimit* old) {
  TryGuard guard(g_limit_lock);
  if (!guard) {  // a signal handler's call, inside one of ours on this thread: as it is
    ErrnoKeeper keep;
    return sys_prlimit(want, old) == 0 ? 0 : errno;
  }
  ErrnoKeeper keep;
  rlimit kernel;
  if (sys_prlimit(nullptr, &kernel) != 0) return errno;
  if (old) *old = kernel;
  if (g_limit.lifted && old) {
    if (kernel.rlim_cur == g_limit.kernel.rlim_cur) old->rlim_cur = g_limit.program.rlim_cur;
    if (kernel.rlim_max == g_limit.kernel.rlim_max) old->rlim_max = g_limit.program.rlim_max;
  }
  if (!want) return 0;
  if (want->rlim_cur > want->rlim_max) return EINVAL;
  // The hard limit's lift is fixed the first time the program lowers it, and never takes it
  // above where it was (an unprivileged process cannot raise it).
  rlimit give = *want;
  if (want->rlim_max != RLIM_INFINITY) {
    if (g_limit.hard_lift == 0 && want->rlim_max < kernel.rlim_max)
      g_limit.hard_lift =
          std::min<std::size_t>(g_own_space.load(std::memory_order_relaxed) + kHardHeadroom,
                                kernel.rlim_max - want->rlim_max);
    give.rlim_max = plus(want->rlim_max, g_limit.hard_lift);
  }
  give.rlim_cur = lifted_soft(want->rlim_cur, give.rlim_max);
  if (sys_prlimit(&give, nullptr) != 0) return errno;
  g_limit.lifted = true;
  g_limit.program = *want;
  g_limit.kernel = give;
  g_limit_lifted.store(true, std::memory_order_release);
  return 0;
}

int get_space_limit(rlimit* out) { return set_space_limit(nullptr, out); }

bool drop_space_lift() {
  TryGuard guard(g_limit_lock);  // not SpinGuard: a vfork child shares the lock word (and TLS)
  if (!guard || !g_limit.lifted || g_limit.raised ||
      g_limit.program.rlim_cur >= g_limit.kernel.rlim_cur)
    return false;
  ErrnoKeeper keep;
  const rlimit program{g_limit.program.rlim_cur, g_limit.kernel.rlim_max};
  return sys_prlimit(&program, nullptr) == 0;
}

void restore_space_lift() {
  TryGuard guard(g_limit_lock);
  if (!guard) return;
  ErrnoKeeper keep;
  sys_prlimit(&g_limit.kernel, nullptr);
}

bool raise_space_limit(rlimit* saved) {
  SpinGuard guard(g_limit_lock);
  ErrnoKeeper keep;
  if (sys_prlimit(nullptr, saved) != 0 || saved->rlim_cur >= saved->rlim_max) return false;
  const rlimit all{saved->rlim_max, saved->rlim_max};
  g_limit.raised = sys_prlimit(&all, nullptr) == 0;
  return g_limit.raised;
}

void restore_space_limit(const rlimit& saved) {
  SpinGuard guard(g_limit_lock);
  ErrnoKeeper keep;
  g_limit.raised = false;
  if (g_limit.lifted) {
    g_limit.kernel.rlim_cur = RLIM_INFINITY;  // not what the kernel has: lift_by_own_space sets it
    lift_by_own_space();
  } else {
    sys_prlimit(&saved, nullptr);
  }
}

void* reserve_internal(std::size_t bytes) {
  ErrnoKeeper keep;
  void* p = reserve(bytes);
  if (p) {
    sys_madvise(p, bytes, MADV_NOHUGEPAGE);
    sys_madvise(p, bytes, MADV_DONTDUMP);
  }
  return remember_internal(p, bytes);
}

void unmap_internal(void* p, std::size_t bytes) {
  {
    SpinGuard guard(g_internal_lock);
    for (std::size_t i = 0; i < g_internal_count; ++i)
      if (g_internal[i].start == p) {
        g_internal[i] = g_internal[--g_internal_count];
        break;
      }
  }
  unmap(p, bytes);
  OwnSpace::given_back(bytes);
}

std::uint64_t program_advice_count() { return g_program_advice.load(std::memory_order_acquire); }
void count_program_advice() { g_program_advice.fetch_add(1, std::memory_order_acq_rel); }

void internal_prefork() {
  g_limit_lock.lock();
  g_internal_lock.lock();
}
void internal_postfork() {
  g_internal_lock.unlock();
  g_limit_lock.unlock();
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
      syscall(SYS_sigaltstack, nullptr, &alternate) == 0 && (alternate.ss_flags & SS_ONSTACK);
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

std::size_t internal_ranges(Range* out, std::size_t max) {
  SpinGuard guard(g_internal_lock);
  for (std::size_t i = 0; i < g_internal_count && i < max; ++i) out[i] = g_internal[i];
  return g_internal_count;
}

}  // namespace heapledger::detail::os
