// sigwait, sigwaitinfo and sigtimedwait, interposed: a stop request of the leak scan's (by
// signal, where ptrace cannot stop threads: see tracker/stop_world.cc) that a thread takes
// through one of them parks the thread there while the scan is stopping threads, as the signal's
// handler would, and is dropped: the wait goes on. The scan does not send its signal to a thread
// asleep in sigwait for it, nor at once to one that has it blocked, but one that ran 25 ms with
// it blocked is sent it, and a thread can open its mask between the scan's look and the request:
// such a request was the answer to the thread's next wait, a signal the program never sent.
// signalfd, interposed too, tells the scan which signals a signalfd reads (it does not send its
// signal late where one does). Not seen: a signalfd made, or a wait made, by the system call
// itself.
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>

#include <atomic>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "shim/sigwait_loop.h"
#include "tracker/stop_world.h"

using namespace heapledger::detail;

namespace {

std::atomic<SigtimedwaitFn> g_sigtimedwait;
using SignalfdFn = int (*)(int, const sigset_t*, int);
std::atomic<SignalfdFn> g_signalfd;

// Looked up at load, not at a first call: dlsym holds the dynamic loader's lock, and a handler
// that left a first sigtimedwait by siglongjmp (a timeout idiom) took it out of dlsym holding
// that lock for good; the exit's report then waited for it in dlopen for ever (a review's, 2 runs
// in 36 of classify mode alarm_jump).
__attribute__((constructor)) void find_real_functions() {
  next_symbol(&g_sigtimedwait, "sigtimedwait");
  next_symbol(&g_signalfd, "signalfd");
}

std::int64_t now_ns() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

bool scan_request(int sig, siginfo_t* info) {
  if (!is_scan_request(sig, info)) return false;
  take_scan_request(info);
  return true;
}

int wait_for_signal(const sigset_t* set, siginfo_t* info, const struct timespec* timeout) {
  const SigtimedwaitFn real = next_symbol(&g_sigtimedwait, "sigtimedwait");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  return wait_dropping(real, scan_request, now_ns, set, info, timeout);
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

extern "C" HL_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) noexcept {
  const SignalfdFn real = next_symbol(&g_signalfd, "signalfd");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  const int made = real(fd, mask, flags);
  if (made >= 0) note_signalfd(mask);  // the kernel has read the mask: it is readable
  return made;
}
