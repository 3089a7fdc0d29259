// sigaction, signal and their other forms, interposed: the first signal handler a program
// installs closes the untracked fast paths that change a thread's cache without marking it in
// use (pool::g_unguarded): a handler that allocates could otherwise land between a cache's read
// of its count and its store of the new one, and take the very block its thread was taking.
// What a handler does is not known, so any handler counts (not SIG_DFL or SIG_IGN). Not seen: a
// handler installed with the system call itself (syscall(SYS_rt_sigaction, ...)), by a library
// loaded with RTLD_DEEPBIND (its calls bind to the C library's own), or through sigvec (binaries
// linked against glibc before 2.21).
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
using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);

std::atomic<SigactionFn> g_sigaction, g___sigaction;
std::atomic<SignalFn> g_signal, g_sysv_signal, g___sysv_signal, g_bsd_signal, g_sigset, g_ssignal;

// Looked up at load, not at a first call: that may come from a signal handler (heapledger's own
// report of a fatal signal calls signal()), and the lookup takes the dynamic linker's lock.
__attribute__((constructor)) void find_real_functions() {
  next_symbol(&g_sigaction, "sigaction");
  next_symbol(&g___sigaction, "__sigaction");
  next_symbol(&g_signal, "signal");
  next_symbol(&g_sysv_signal, "sysv_signal");
  next_symbol(&g___sysv_signal, "__sysv_signal");
  next_symbol(&g_bsd_signal, "bsd_signal");
  next_symbol(&g_sigset, "sigset");
  next_symbol(&g_ssignal, "ssignal");
}

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

int change_action(std::atomic<SigactionFn>* real, const char* name, int sig,
                  const struct sigaction* act, struct sigaction* old) {
  if (act &&
      ((act->sa_flags & SA_SIGINFO) ? act->sa_sigaction != nullptr : installs(act->sa_handler)))
    pool::note_signal_handler();
  const SigactionFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(sig, act, old);
}

}  // namespace

extern "C" HL_EXPORT int sigaction(int sig, const struct sigaction* act,
                                   struct sigaction* old) noexcept {
  return change_action(&g_sigaction, "sigaction", sig, act, old);
}
extern "C" HL_EXPORT int __sigaction(int sig, const struct sigaction* act,
                                     struct sigaction* old) noexcept {
  return change_action(&g___sigaction, "__sigaction", sig, act, old);
}
extern "C" HL_EXPORT Handler signal(int sig, Handler h) noexcept {
  return change_disposition(&g_signal, "signal", sig, h);
}
extern "C" HL_EXPORT Handler sysv_signal(int sig, Handler h) noexcept {
  return change_disposition(&g_sysv_signal, "sysv_signal", sig, h);
}
// What <signal.h> makes of signal() in strict ISO C (-std=c11): SysV semantics.
extern "C" HL_EXPORT Handler __sysv_signal(int sig, Handler h) noexcept {
  return change_disposition(&g___sysv_signal, "__sysv_signal", sig, h);
}
extern "C" HL_EXPORT Handler bsd_signal(int sig, Handler h) noexcept {
  return change_disposition(&g_bsd_signal, "bsd_signal", sig, h);
}
extern "C" HL_EXPORT Handler sigset(int sig, Handler h) noexcept {
  return change_disposition(&g_sigset, "sigset", sig, h);
}
extern "C" HL_EXPORT Handler ssignal(int sig, Handler h) noexcept {
  return change_disposition(&g_ssignal, "ssignal", sig, h);
}
