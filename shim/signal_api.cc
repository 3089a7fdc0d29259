// sigaction, signal and their older forms, interposed: the first signal handler a program
// installs closes the untracked fast paths that change a thread's cache without marking it in
// use (pool::g_unguarded): a handler that allocates could otherwise land between a cache's read
// of its count and its store of the new one, and take the very block its thread was taking.
// What a handler does is not known, so any handler counts (not SIG_DFL or SIG_IGN). A handler
// installed with the system call itself (syscall(SYS_rt_sigaction, ...)) is not seen.
#include <errno.h>
#include <signal.h>

#include <atomic>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "shim/pool.h"

using namespace heapledger::detail;

namespace {

using Handler = void (*)(int);
using SignalFn = Handler (*)(int, Handler);

bool installs(Handler h) { return h != SIG_DFL && h != SIG_IGN && h != SIG_ERR && h != SIG_HOLD; }

// Noted before the call: a signal may arrive the moment the kernel has the handler.
Handler change_disposition(std::atomic<SignalFn>* real, const char* name, int sig, Handler h) {
  if (installs(h)) pool::note_signal_handler();
  const SignalFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return SIG_ERR;
  }
  return fn(sig, h);
}

}  // namespace

extern "C" HL_EXPORT int sigaction(int sig, const struct sigaction* act,
                                   struct sigaction* old) noexcept {
  static std::atomic<int (*)(int, const struct sigaction*, struct sigaction*)> real{nullptr};
  if (act &&
      ((act->sa_flags & SA_SIGINFO) ? act->sa_sigaction != nullptr : installs(act->sa_handler)))
    pool::note_signal_handler();
  const auto fn = next_symbol(&real, "sigaction");
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(sig, act, old);
}

extern "C" HL_EXPORT Handler signal(int sig, Handler h) noexcept {
  static std::atomic<SignalFn> real{nullptr};
  return change_disposition(&real, "signal", sig, h);
}

extern "C" HL_EXPORT Handler sysv_signal(int sig, Handler h) noexcept {
  static std::atomic<SignalFn> real{nullptr};
  return change_disposition(&real, "sysv_signal", sig, h);
}

extern "C" HL_EXPORT Handler bsd_signal(int sig, Handler h) noexcept {
  static std::atomic<SignalFn> real{nullptr};
  return change_disposition(&real, "bsd_signal", sig, h);
}

extern "C" HL_EXPORT Handler sigset(int sig, Handler h) noexcept {
  static std::atomic<SignalFn> real{nullptr};
  return change_disposition(&real, "sigset", sig, h);
}
