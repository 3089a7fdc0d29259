// sigwait, sigwaitinfo and sigtimedwait, interposed: a stop request of the leak scan's (by
// signal, where ptrace cannot stop threads: see tracker/stop_world.cc) that a thread takes
// through one of them is dropped, and the wait goes on. The scan does not send its signal to a
// thread asleep in sigwait for it, nor at once to one that has it blocked, but one that ran
// 25 ms with it blocked is sent it, and a thread can open its mask between the scan's look and
// the request: such a request, still pending after the scan, was the answer to the thread's
// next wait, a signal the program never sent. Not seen: a signalfd read, and the system call
// made directly.
#include <errno.h>
#include <signal.h>
#include <time.h>

#include <atomic>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "tracker/stop_world.h"

using namespace heapledger::detail;

namespace {

using SigtimedwaitFn = int (*)(const sigset_t*, siginfo_t*, const struct timespec*);
std::atomic<SigtimedwaitFn> g_sigtimedwait;

std::int64_t now_ns() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// The C library's sigtimedwait, with the scan's requests taken out: after one, it waits again
// for what is left of the timeout.
int wait_for_signal(const sigset_t* set, siginfo_t* info, const struct timespec* timeout) {
  const SigtimedwaitFn real = next_symbol(&g_sigtimedwait, "sigtimedwait");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  siginfo_t own;
  siginfo_t* const out = info ? info : &own;
  const std::int64_t deadline =
      timeout ? now_ns() + timeout->tv_sec * 1000000000 + timeout->tv_nsec : 0;
  struct timespec left;
  if (timeout) left = *timeout;
  for (;;) {
    const int sig = real(set, out, timeout ? &left : nullptr);
    if (!is_scan_request(sig, out)) return sig;
    if (timeout) {
      const std::int64_t ns = deadline - now_ns();
      if (ns <= 0) {
        errno = EAGAIN;
        return -1;
      }
      left = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
  }
}

}  // namespace

extern "C" HL_EXPORT int sigtimedwait(const sigset_t* set, siginfo_t* info,
                                      const struct timespec* timeout) {
  return wait_for_signal(set, info, timeout);
}

extern "C" HL_EXPORT int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  return wait_for_signal(set, info, nullptr);
}

// As the C library's: EINTR is waited through (POSIX does not name it; programs do not expect
// it), and the error is returned, not left in errno alone.
extern "C" HL_EXPORT int sigwait(const sigset_t* set, int* sig) {
  int got;
  do got = wait_for_signal(set, nullptr, nullptr);
  while (got < 0 && errno == EINTR);
  if (got < 0) return errno;
  *sig = got;
  return 0;
}
