// See space_limit.h. For each limit the program set for itself, the kernel holds it lifted: the
// soft limit by what heapledger holds now (kept up to date as that grows, so the program's own
// mappings get what it allowed them), the hard limit by a lift fixed when the program first
// lowers it (an unprivileged process cannot raise its hard limit again): what heapledger held
// then, plus kHardHeadroom for its growth afterwards (its tables, the exit report's stack and the
// reporter module). System calls made directly: this runs inside allocations.
#include "shim/space_limit.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "shim/errno_keeper.h"
#include "shim/kernel_call.h"
#include "shim/os.h"
#include "shim/spin_lock.h"

namespace heapledger::detail::space_limit {
namespace {

constexpr std::size_t kHardHeadroom = std::size_t{4} << 30;
constexpr int kResources[2] = {RLIMIT_AS, RLIMIT_DATA};

struct Limit {
  bool lifted = false;  // the program set its own since start
  bool raised = false;  // the exit report's room is open
  rlimit program{};     // what it set
  rlimit kernel{};      // what the kernel was given for it
  std::size_t hard_lift = 0;
};

constinit std::atomic<std::size_t> g_own[2]{};  // heapledger's own: address space, data
SpinLock g_lock;
Limit g_limits[2] HL_GUARDED_BY(g_lock);
constinit std::atomic<bool> g_any_lifted{false};  // read without the lock

long sys_prlimit(int k, const rlimit* set, rlimit* get) {
  return os::kernel_call_errno(SYS_prlimit64, 0, kResources[k], reinterpret_cast<long>(set),
                               reinterpret_cast<long>(get));
}

int index_of(int resource) { return resource == RLIMIT_AS ? 0 : resource == RLIMIT_DATA ? 1 : -1; }

// The program's struct, read and written as the kernel would: a bad pointer fails with EFAULT
// (it crashed heapledger, a review's). The kernel itself is asked first: whether it would read
// the program's struct (os::readable), or it writes the current limit there (prlimit64, as the
// program's own call would; EFAULT for memory it may not write, read-only or not mapped), and
// then ours goes over it. Through process_vm_readv/writev, a seccomp filter could kill the
// program for asking its limits (systemd's services without @debug), and once the main thread
// had ended the copy fell back to a plain one, which crashed on a bad pointer; through
// /proc/thread-self/mem (a first version) it wrote into read-only memory and failed where /proc
// could not be opened (reviews'). What this costs: for a moment the struct holds the kernel's
// (lifted) data limit before ours, which another thread reading it meanwhile, or the first half
// of a struct that ends on memory it may not write, can see (a review's).
bool copy_across(const void* from, void* to, bool to_program) {
  if (to_program) {
    // Refused for another reason (a filter that refuses what the program's own call would do),
    // the copy goes on as before.
    if (os::kernel_call(SYS_prlimit64, 0, RLIMIT_DATA, 0, reinterpret_cast<long>(to)) == -EFAULT)
      return false;
  } else if (!os::readable(from, sizeof(rlimit))) {
    return false;
  }
  std::memcpy(to, from, sizeof(rlimit));
  return true;
}

rlim_t plus(rlim_t v, std::size_t by) {
  return v == RLIM_INFINITY || v >= RLIM_INFINITY - by ? RLIM_INFINITY : v + by;
}

// The kernel's soft limit for the program's: its own plus what heapledger holds, within the hard.
rlim_t lifted_soft(int k, rlim_t program_soft, rlim_t kernel_hard) {
  return std::min(plus(program_soft, g_own[k].load(std::memory_order_relaxed)), kernel_hard);
}

// Moves the kernel's soft limit with what heapledger holds now.
void follow_own(int k) HL_REQUIRES(g_lock) {
  Limit& l = g_limits[k];
  if (!l.lifted || l.raised || l.program.rlim_cur == RLIM_INFINITY) return;
  const rlimit now{lifted_soft(k, l.program.rlim_cur, l.kernel.rlim_max), l.kernel.rlim_max};
  if (now.rlim_cur == l.kernel.rlim_cur || sys_prlimit(k, &now, nullptr) != 0) return;
  l.kernel = now;
}

void adjust(std::ptrdiff_t address_space, std::ptrdiff_t data) {
  g_own[0].fetch_add(static_cast<std::size_t>(address_space), std::memory_order_relaxed);
  g_own[1].fetch_add(static_cast<std::size_t>(data), std::memory_order_relaxed);
  if (!g_any_lifted.load(std::memory_order_acquire)) return;
  TryGuard guard(g_lock);  // held by this thread: a handler's mapping, counted, not lifted
  if (!guard) return;
  ErrnoKeeper keep;
  follow_own(0);
  follow_own(1);
}

}  // namespace

void grow(std::size_t address_space, std::size_t data) {
  adjust(static_cast<std::ptrdiff_t>(address_space), static_cast<std::ptrdiff_t>(data));
}
void shrink(std::size_t address_space, std::size_t data) {
  adjust(-static_cast<std::ptrdiff_t>(address_space), -static_cast<std::ptrdiff_t>(data));
}

namespace {

// set() under the lock: the limit's value as the program sees it into *seen, and `want` (if not
// null) set. 0, an errno, or kBusy where the lock is held (a signal handler's call, inside one of
// ours on this thread).
constexpr int kBusy = -1;
int set_locked(int k, const rlimit* want, rlimit* seen) {
  TryGuard guard(g_lock);
  if (!guard) return kBusy;
  Limit& l = g_limits[k];
  rlimit kernel;
  if (sys_prlimit(k, nullptr, &kernel) != 0) return errno;
  *seen = kernel;  // what the program set, where the kernel has our lift of it
  if (l.lifted && kernel.rlim_cur == l.kernel.rlim_cur) seen->rlim_cur = l.program.rlim_cur;
  if (l.lifted && kernel.rlim_max == l.kernel.rlim_max) seen->rlim_max = l.program.rlim_max;
  if (!want) return 0;
  if (want->rlim_cur > want->rlim_max) return EINVAL;
  // The hard limit's lift is fixed the first time the program lowers it, and never takes it
  // above where it was (an unprivileged process cannot raise it).
  rlimit give = *want;
  if (want->rlim_max != RLIM_INFINITY) {
    if (l.hard_lift == 0 && want->rlim_max < kernel.rlim_max)
      l.hard_lift = std::min<std::size_t>(g_own[k].load(std::memory_order_relaxed) + kHardHeadroom,
                                          kernel.rlim_max - want->rlim_max);
    give.rlim_max = plus(want->rlim_max, l.hard_lift);
  }
  give.rlim_cur = lifted_soft(k, want->rlim_cur, give.rlim_max);
  if (sys_prlimit(k, &give, nullptr) != 0) return errno;
  l.lifted = true;
  l.program = *want;
  l.kernel = give;
  g_any_lifted.store(true, std::memory_order_release);
  return 0;
}

}  // namespace

// As the kernel's prlimit: the new value is read before the old one is written (they may be the
// same struct), and nothing is written when the call fails. The program's structs are read and
// written outside the lock: a copy may fault on memory a userfaultfd handler fills, and that
// handler asking a limit waited for the lock for good (a review's: two threads spinning).
int set(int resource, const rlimit* want_in, rlimit* old) {
  const int k = index_of(resource);
  if (k < 0) return EINVAL;
  ErrnoKeeper keep;
  const bool setting = want_in != nullptr;
  rlimit want{};
  if (setting && !copy_across(want_in, &want, false)) return EFAULT;
  rlimit seen{};
  if (const int error = set_locked(k, setting ? &want : nullptr, &seen)) {
    if (error != kBusy) return error;
    return sys_prlimit(k, want_in, old) == 0 ? 0 : errno;  // as it is
  }
  if (old && !copy_across(&seen, old, true))
    return EFAULT;  // the new one is set, as the kernel does
  return 0;
}

bool any_lifted() { return g_any_lifted.load(std::memory_order_acquire); }

bool drop_lift() {
  TryGuard guard(g_lock);  // not SpinGuard: a vfork child shares the lock word (and TLS)
  if (!guard) return false;
  ErrnoKeeper keep;
  bool dropped = false;
  for (int k = 0; k < 2; ++k) {
    const Limit& l = g_limits[k];
    if (!l.lifted || l.raised || l.program.rlim_cur >= l.kernel.rlim_cur) continue;
    const rlimit program{l.program.rlim_cur, l.kernel.rlim_max};
    dropped |= sys_prlimit(k, &program, nullptr) == 0;
  }
  return dropped;
}

void restore_lift() {
  TryGuard guard(g_lock);
  if (!guard) return;
  ErrnoKeeper keep;
  for (int k = 0; k < 2; ++k)
    if (g_limits[k].lifted) sys_prlimit(k, &g_limits[k].kernel, nullptr);
}

// Not waiting for the lock: exit() from a signal handler that interrupted this thread in set()
// would wait for itself (a review's program hung so in every run). The limits then stay as they
// are for the report.
void raise_for_report(Saved* saved) {
  saved->raised[0] = saved->raised[1] = false;
  TryGuard guard(g_lock);
  if (!guard) return;
  ErrnoKeeper keep;
  for (int k = 0; k < 2; ++k) {
    rlimit& before = saved->limits[k];
    if (sys_prlimit(k, nullptr, &before) != 0 || before.rlim_cur >= before.rlim_max) continue;
    const rlimit all{before.rlim_max, before.rlim_max};
    saved->raised[k] = g_limits[k].raised = sys_prlimit(k, &all, nullptr) == 0;
  }
}

void restore_after_report(const Saved& saved) {
  if (!saved.raised[0] && !saved.raised[1]) return;
  TryGuard guard(g_lock);
  if (!guard) return;
  ErrnoKeeper keep;
  for (int k = 0; k < 2; ++k) {
    if (!saved.raised[k]) continue;
    Limit& l = g_limits[k];
    l.raised = false;
    if (l.lifted) {
      l.kernel.rlim_cur = RLIM_INFINITY;  // not what the kernel has: follow_own sets it
      follow_own(k);
    } else {
      sys_prlimit(k, &saved.limits[k], nullptr);
    }
  }
}

void prefork() { g_lock.lock(); }
void postfork() { g_lock.unlock(); }

}  // namespace heapledger::detail::space_limit
