// System calls heapledger makes on the program's threads, with every argument register set.
//
// The leak scan reads a stopped thread's registers as roots. A thread blocked in the kernel keeps
// the registers it entered with, and the C library passes on whatever its caller left in them as
// the arguments a call does not take: syscall() moves r8 and r9 into r10 and r8, its wrappers
// (sched_yield, munmap) set only the registers they use. A block address the pools had left in r8
// (a class's first block, compared against after a carve) was still in r10 while the thread
// waited for the kernel to fill in the fresh pages, and that block, leaked, came out "still
// reachable" (1 exit in 30 of a program whose threads allocate as it exits, on a loaded machine).
// Here the arguments not given are zero, so a thread blocked in one of heapledger's calls holds
// no stale value in a register the kernel could hand back: rdi, rsi, rdx, r10, r8 and r9 are
// the arguments, rax the call's number, and the kernel overwrites rcx and r11.
#pragma once

#include <sys/syscall.h>

#include <cerrno>

#include "shim/config.h"

namespace heapledger::detail::os {

// The kernel's answer: a negative errno on failure. Makes no call, sets no errno.
HL_ALWAYS_INLINE long kernel_call(long number, long a = 0, long b = 0, long c = 0, long d = 0,
                                  long e = 0, long f = 0) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long result;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return result;
#else
#error "heapledger makes its system calls itself on x86-64 only"
#endif
}

// As the C library's syscall() answers: -1 with errno set on failure.
HL_ALWAYS_INLINE long kernel_call_errno(long number, long a = 0, long b = 0, long c = 0, long d = 0,
                                        long e = 0, long f = 0) {
  const long result = kernel_call(number, a, b, c, d, e, f);
  if (result < 0 && result > -4096) {
    errno = static_cast<int>(-result);
    return -1;
  }
  return result;
}

// sched_yield(), for the spinning waits: a thread waiting on a lock the exit scan's thread holds
// is stopped in it.
HL_ALWAYS_INLINE void yield_cpu() { kernel_call(SYS_sched_yield); }

}  // namespace heapledger::detail::os
