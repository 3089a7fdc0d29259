// sigaction, signal and their other forms, interposed: the first signal handler a program
// installs closes the untracked fast paths that change a thread's cache without marking it in
// use (pool::g_unguarded): a handler that allocates could otherwise land between a cache's read
// of its count and its store of the new one, and take the very block its thread was taking.
// What a handler does is not known, so any handler counts (not SIG_DFL or SIG_IGN). Not seen: a
// handler installed with the system call itself (syscall(SYS_rt_sigaction, ...)), by a library
// loaded with RTLD_DEEPBIND (its calls bind to the C library's own), or through sigvec (binaries
// linked against glibc before 2.21).
//
// They also keep the tracker's catcher of the stop signals out of the program's sight (see
// stop_signals.h): where it stands, the program is shown the default action, and the default
// action it sets puts the catcher back. The same holes: a program that asks the system call
// itself sees the catcher, and one that sets the default action through it has no report.
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "shim/pool.h"
#include "shim/stop_signals.h"

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

// The tracker's catcher of the stop signals; null until it takes them (never, untracked).
std::atomic<stop_signals::Catcher> g_catcher{nullptr};

bool catches(int sig) {
  if (!g_catcher.load(std::memory_order_relaxed)) return false;
  for (int s : stop_signals::kSignals)
    if (s == sig) return true;
  return false;
}

// With SA_SIGINFO and a null sa_sigaction too: the kernel reads the same word either way.
bool is_default(const struct sigaction& a) { return a.sa_handler == SIG_DFL; }

struct sigaction catcher_action() {
  struct sigaction a {};
  a.sa_sigaction = g_catcher.load(std::memory_order_relaxed);
  sigemptyset(&a.sa_mask);
  // SA_NODEFER: the signal it raises again once the report is written ends the process there.
  a.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
  return a;
}

// What the program is shown of the catcher: the default action.
void shown(struct sigaction* old) {
  if (old && (old->sa_flags & SA_SIGINFO) &&
      old->sa_sigaction == g_catcher.load(std::memory_order_relaxed)) {
    *old = {};
    old->sa_handler = SIG_DFL;
    sigemptyset(&old->sa_mask);
  }
}

int real_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  const SigactionFn fn = next_symbol(&g_sigaction, "sigaction");
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(sig, act, old);
}

// Noted before the call: a signal may arrive the moment the kernel has the handler.
Handler change_disposition(std::atomic<SignalFn>* real, const char* name, int sig, Handler h) {
  if (installs(h)) pool::note_signal_handler();
  if (h == SIG_DFL && catches(sig)) {  // the catcher in its place
    const struct sigaction mine = catcher_action();
    struct sigaction old;
    if (real_sigaction(sig, &mine, &old) != 0) return SIG_ERR;
    shown(&old);
    if (real == &g_sigset) {  // sigset() with a disposition lets the signal through again
      sigset_t one, was;
      sigemptyset(&one);
      sigaddset(&one, sig);
      if (pthread_sigmask(SIG_UNBLOCK, &one, &was) == 0 && sigismember(&was, sig) == 1)
        return SIG_HOLD;  // what it answers for a signal that was held
    }
    return old.sa_handler;  // sa_sigaction's too: they share their storage
  }
  const SignalFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return SIG_ERR;
  }
  const Handler was = fn(sig, h);
  const stop_signals::Catcher catcher = g_catcher.load(std::memory_order_relaxed);
  return catcher &&
                 reinterpret_cast<std::uintptr_t>(was) == reinterpret_cast<std::uintptr_t>(catcher)
             ? SIG_DFL
             : was;
}

int change_action(std::atomic<SigactionFn>* real, const char* name, int sig,
                  const struct sigaction* act, struct sigaction* old) {
  if (act &&
      ((act->sa_flags & SA_SIGINFO) ? act->sa_sigaction != nullptr : installs(act->sa_handler)))
    pool::note_signal_handler();
  struct sigaction mine;
  if (act && is_default(*act) && catches(sig)) act = &(mine = catcher_action());
  const SigactionFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  const int rc = fn(sig, act, old);
  if (rc == 0) shown(old);
  return rc;
}

}  // namespace

namespace heapledger::detail::stop_signals {

void take(Catcher catcher) {
  pool::note_signal_handler();  // the catcher allocates (the report), as any handler may
  g_catcher.store(catcher);
  const struct sigaction mine = catcher_action();
  for (int sig : kSignals) {
    struct sigaction now;
    if (real_sigaction(sig, nullptr, &now) == 0 && is_default(now))
      real_sigaction(sig, &mine, nullptr);
  }
}

void give_back(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  real_sigaction(sig, &dfl, nullptr);
}

void release(int sig) {
  struct sigaction now;
  if (real_sigaction(sig, nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
      now.sa_sigaction == g_catcher.load(std::memory_order_relaxed))
    give_back(sig);
}

}  // namespace heapledger::detail::stop_signals

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
