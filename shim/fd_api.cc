// pipe2, interposed for one caller: libunwind. To check that an address is readable before it
// reads it (frames without unwind information: JIT code, objects built without it), libunwind
// writes a byte from it into a pipe it opens when it starts. That pipe took the lowest free
// descriptors (3 and 4) in every tracked process: a program's files got other numbers, one that
// closed stdout had the pipe there (`echo hi >&-` succeeded), and one that closed every
// descriptor and opened its own files had libunwind read bytes out of its input and write
// memory into its output (a user's trial). The pipe libunwind asks for is moved to descriptors
// near the top of the range the process may open, out of the way of the ones programs use.
// Every other caller gets pipe2 as libc gives it.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "shim/config.h"
#include "shim/fd_guard.h"

namespace heapledger::detail::fd_guard {
namespace {

// libunwind's code, once it is loaded (find_unwinder, from the tracker's start).
constinit std::atomic<std::uintptr_t> g_unwinder_lo{0}, g_unwinder_hi{0};

bool from_unwinder(std::uintptr_t ra) {
  return ra >= g_unwinder_lo.load(std::memory_order_acquire) &&
         ra < g_unwinder_hi.load(std::memory_order_acquire);
}

// The executable segment holding *code (one of libunwind's functions).
int note_if_unwinder(dl_phdr_info* info, std::size_t, void* code) {
  const auto at = reinterpret_cast<std::uintptr_t>(code);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) || at - lo >= ph.p_memsz) continue;
    g_unwinder_hi.store(lo + ph.p_memsz, std::memory_order_release);
    g_unwinder_lo.store(lo, std::memory_order_release);
    return 1;
  }
  return 0;
}

// The lowest descriptor the moved pipe may take: 16 below the soft limit, at most 4096 (a
// higher one would grow the kernel's descriptor table to match, in every tracked process).
int out_of_the_way() {
  rlimit limit{};
  if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit) != 0) return -1;
  const rlim_t top = limit.rlim_cur < 4096 ? limit.rlim_cur : 4096;
  return top > 16 + 3 ? static_cast<int>(top - 16) : -1;
}

long sys_fcntl(int fd, int cmd, long arg) { return syscall(SYS_fcntl, fd, cmd, arg); }

// Moves both ends to descriptors from out_of_the_way() up; if that cannot be done, no pipe at
// all (libunwind then takes every address it checks as unreadable, and stops the stack there):
// better than one on the program's descriptors. Its array then holds -1s: libunwind ignores the
// failure, and kept the numbers just closed as its pipe (under `ulimit -n 16` it read the
// program's file 3 and wrote into its file 4, a user's trial).
int move_out_of_the_way(int fds[2]) {
  const int base = out_of_the_way();
  const long read_end = base > 0 ? sys_fcntl(fds[0], F_DUPFD_CLOEXEC, base) : -1;
  const long write_end = read_end >= 0 ? sys_fcntl(fds[1], F_DUPFD_CLOEXEC, base) : -1;
  syscall(SYS_close, fds[0]);
  syscall(SYS_close, fds[1]);
  if (write_end < 0) {
    if (read_end >= 0) syscall(SYS_close, read_end);
    fds[0] = fds[1] = -1;
    errno = EMFILE;
    return -1;
  }
  fds[0] = static_cast<int>(read_end);
  fds[1] = static_cast<int>(write_end);
  return 0;
}

}  // namespace

// By one of its functions, looked up through the module that links it: the program may have
// another libunwind loaded (LLVM's libunwind.so.1 took its place, a review's).
void find_unwinder(void* module) {
  if (void* code = dlsym(module, "_ULx86_64_init_local")) dl_iterate_phdr(note_if_unwinder, code);
}

}  // namespace heapledger::detail::fd_guard

using namespace heapledger::detail;

extern "C" HL_EXPORT int pipe2(int fds[2], int flags) noexcept {
  const auto ra = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  const long made = syscall(SYS_pipe2, fds, flags);
  if (made != 0 || !fd_guard::from_unwinder(ra)) return static_cast<int>(made);
  return fd_guard::move_out_of_the_way(fds);
}
