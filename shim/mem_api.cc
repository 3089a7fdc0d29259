// mprotect, pkey_mprotect, madvise and mlock, interposed to count: a large block nothing in the
// process gave advice about since it was handed out goes back to the pools' cache with its
// protection reset alone, not its advice (see os::program_advice_count). Each then does what
// glibc's does: the system call.
#include <errno.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>

#include "shim/config.h"
#include "shim/errno_keeper.h"
#include "shim/os.h"
#include "shim/pool.h"
#include "shim/proc_maps.h"

using namespace heapledger::detail;

extern "C" HL_EXPORT int mprotect(void* addr, std::size_t len, int prot) noexcept {
  os::count_program_advice();
  return static_cast<int>(syscall(SYS_mprotect, addr, len, prot));
}

extern "C" HL_EXPORT int pkey_mprotect(void* addr, std::size_t len, int prot, int pkey) noexcept {
  os::count_program_advice();
  if (pkey == -1) return static_cast<int>(syscall(SYS_mprotect, addr, len, prot));  // as glibc
  return static_cast<int>(syscall(SYS_pkey_mprotect, addr, len, prot, pkey));
}

extern "C" HL_EXPORT int madvise(void* addr, std::size_t len, int advice) noexcept {
  os::count_program_advice();
  return static_cast<int>(syscall(SYS_madvise, addr, len, advice));
}

// Locked pages count too: a large block that grows moves into a kept mapping only if nothing was
// done to its pages (see pool::realloc_large), or a block of secrets the program locked would go
// on in pages that can be swapped out (a review's).
extern "C" HL_EXPORT int mlock(const void* addr, std::size_t len) noexcept {
  os::count_program_advice();
  return static_cast<int>(syscall(SYS_mlock, addr, len));
}

extern "C" HL_EXPORT int mlock2(const void* addr, std::size_t len, unsigned int flags) noexcept {
  os::count_program_advice();
  return static_cast<int>(syscall(SYS_mlock2, addr, len, flags));
}

namespace {

// Whether the kernel lets this process lock any amount: CAP_IPC_LOCK, or no RLIMIT_MEMLOCK.
bool locks_without_limit() {
  rlimit memlock{};
  if (syscall(SYS_prlimit64, 0, RLIMIT_MEMLOCK, nullptr, &memlock) == 0 &&
      memlock.rlim_cur == RLIM_INFINITY)
    return true;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]{};
  return syscall(SYS_capget, &header, caps) == 0 &&
         (caps[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32) & 1) != 0;
}

// The kernel's mlockall, and what it leaves in force for later memory (os::set_lock_future).
int kernel_lock_all(int flags) {
  const int result = static_cast<int>(syscall(SYS_mlockall, flags));
  if (result == 0) os::set_lock_future((flags & MCL_FUTURE) != 0);
  return result;
}

// mlock2 for each part of mapping m that is not heapledger's: none of the pools' reservation
// not in use (no access), the pools' usable memory as it is used (MLOCK_ONFAULT), the rest as
// asked. A line of /proc/self/maps may be the program's mapping and one of heapledger's
// tables the kernel merged (both anonymous and writable).
void lock_program_part(const proc_maps::Mapping& m, unsigned asked) {
  const pool::Region& region = pool::g_region;
  const bool pools = region.size != 0 && m.lo < region.base + region.size && m.hi > region.base;
  if (pools && !m.accessible) return;
  unsigned flags = pools ? MLOCK_ONFAULT : asked;
  os::for_each_outside_internal(
      m.lo, m.hi,
      [](std::uintptr_t from, std::uintptr_t to, void* lock_flags) {
        syscall(SYS_mlock2, from, to - from, *static_cast<unsigned*>(lock_flags));
      },
      &flags);
}

}  // namespace

// mlockall(MCL_CURRENT) from a process that may lock any amount (root, or no RLIMIT_MEMLOCK) is
// done as the kernel does it, for the program's mappings and its heap. The kernel's would lock
// heapledger's tables too, and fault them in: a sparse table of about 215 GiB written a few pages
// at a time (the OOM killer, for a daemon that locks itself in memory: mysqld --memlock,
// memcached -k, openvpn --mlock; a trial's). The pools' usable memory is locked as it is used
// (MLOCK_ONFAULT): each class is made usable a MiB at a time, where glibc's heap grows by what it
// needs; and with MCL_FUTURE, what they make usable later is locked the same way (the kernel
// locks only new mappings: os::lock_if_future). The large mappings kept for reuse go back to the
// system first (free memory: glibc gives its large blocks back at free). Under a limit the
// kernel decides, and refuses (ENOMEM): the pools' reservation (terabytes of address space, no
// access) counts against it (README, Known limits); it is asked to fault nothing in, in case a
// limit that large lets it through. The same under a sandbox, and where /proc cannot be read.
extern "C" HL_EXPORT int mlockall(int flags) noexcept {
  os::count_program_advice();
  if (!(flags & MCL_CURRENT) || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)))
    return kernel_lock_all(flags);  // the kernel's answer, EINVAL too
  // Under a seccomp filter (or about to be: no_new_privs) the walk's system calls may not be
  // allowed (capget, reading /proc, mlock2): the kernel's, without faulting anything in.
  if (os::sandboxed() || !locks_without_limit()) return kernel_lock_all(flags | MCL_ONFAULT);
  // MCL_FUTURE first, as asked (the kernel's mlockall(MCL_CURRENT) also ends an earlier one's).
  if (flags & MCL_FUTURE) {
    if (kernel_lock_all(flags & ~MCL_CURRENT) != 0) return -1;
  } else if (os::lock_future_set()) {
    syscall(SYS_munlockall);
    os::set_lock_future(false);
  }
  pool::give_back_kept_mappings();
  const unsigned asked = (flags & MCL_ONFAULT) ? MLOCK_ONFAULT : 0;
  char buf[4096];
  bool read;
  {
    ErrnoKeeper keep;  // each part as the kernel's walk takes it: what will not lock is passed over
    read = proc_maps::for_each_read(
        buf, sizeof buf, [&](const proc_maps::Mapping& m) { lock_program_part(m, asked); });
  }
  return read ? 0 : kernel_lock_all(flags | MCL_ONFAULT);
}

// The mark goes first: a commit of the pools' that read it set unlocks its range again
// (os::lock_if_future).
extern "C" HL_EXPORT int munlockall() noexcept {
  const bool future = os::lock_future_set();
  os::set_lock_future(false);
  const int result = static_cast<int>(syscall(SYS_munlockall));
  if (result != 0 && future) os::set_lock_future(true);
  return result;
}

// prctl, interposed to see a program ask for a seccomp filter (or no_new_privs, which an
// unprivileged one sets first): from then on the pools make no system call glibc's malloc
// would not (os::in_memory). Declared variadic in <sys/prctl.h>, not included here; the
// arguments are read as glibc's own wrapper reads them.
extern "C" HL_EXPORT int prctl(int option, ...) noexcept {
  va_list args;
  va_start(args, option);
  const unsigned long a2 = va_arg(args, unsigned long), a3 = va_arg(args, unsigned long),
                      a4 = va_arg(args, unsigned long), a5 = va_arg(args, unsigned long);
  va_end(args);
  if (option == PR_SET_SECCOMP || option == PR_SET_NO_NEW_PRIVS) os::note_sandbox();
  return static_cast<int>(syscall(SYS_prctl, option, a2, a3, a4, a5));
}
