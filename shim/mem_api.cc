// mprotect, pkey_mprotect, madvise and mlock, interposed to count: a large block nothing in the
// process gave advice about since it was handed out goes back to the pools' cache with its
// protection reset alone, not its advice (see os::program_advice_count). Each then does what
// glibc's does: the system call.
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstddef>

#include "shim/config.h"
#include "shim/os.h"

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

extern "C" HL_EXPORT int mlockall(int flags) noexcept {
  os::count_program_advice();
  return static_cast<int>(syscall(SYS_mlockall, flags));
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
