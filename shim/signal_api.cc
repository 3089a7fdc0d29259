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
//
// A one-shot handler (SA_RESETHAND, and System V signal()'s) set where the catcher stands: the
// kernel puts the default action back as it runs the handler, with no call seen here, and the
// catcher was gone with it. A handler that then raised the signal again ended the process with no
// report: Node.js does so for SIGTERM and SIGINT (a user trial). Such a handler is installed
// wrapped (run_once): the wrapper puts the catcher back in the default action's place, then runs
// the handler. The program is shown the handler and flags it set.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "shim/config.h"
#include "shim/errno_keeper.h"
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

// The tracker's catcher of the stop signals; null until it takes them (never, untracked). And
// which of them it takes (a bit for each signal number).
std::atomic<stop_signals::Catcher> g_catcher{nullptr};
std::atomic<std::uint64_t> g_taken{0};

constexpr std::uint64_t bit(int sig) { return std::uint64_t{1} << sig; }

bool catches(int sig) {
  return g_catcher.load(std::memory_order_relaxed) && sig > 0 && sig < 64 &&
         (g_taken.load(std::memory_order_relaxed) & bit(sig)) != 0;
}

// With SA_SIGINFO and a null sa_sigaction too: the kernel reads the same word either way.
bool is_default(const struct sigaction& a) { return a.sa_handler == SIG_DFL; }

// SA_NODEFER: the signal it raises again once the report is written ends the process there.
constexpr int kCatcherFlags = SA_SIGINFO | SA_NODEFER | SA_RESTART;

struct sigaction catcher_action() {
  struct sigaction a {};
  a.sa_sigaction = g_catcher.load(std::memory_order_relaxed);
  sigemptyset(&a.sa_mask);
  a.sa_flags = kCatcherFlags;
  return a;
}

int real_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  const SigactionFn fn = next_symbol(&g_sigaction, "sigaction");
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(sig, act, old);
}

// A one-shot handler of the program's where the catcher stands: the handler and flags it set, and
// whether a delivery has yet to take it (armed as it is set, taken by the first). Written before
// its wrapper is installed, read by the wrapper and by what the program is shown. Two for each
// stop signal, each with a wrapper of its own, set in turn: a delivery finds its own even when
// the program set the next meanwhile (a handler of another signal delivered with it, run first,
// set a one-shot handler in its place: it ran instead of the one the kernel chose, and was gone,
// a review's). A vforked child shares them with its parent: one that sets a one-shot handler for
// a stop signal before its exec sets its parent's too.
struct OneShot {
  std::atomic<bool> armed{false};
  std::atomic<stop_signals::Catcher> handler{nullptr};
  std::atomic<int> flags{0};
};
constexpr int kOneShotSignals = 32;
static_assert(std::ranges::all_of(stop_signals::kSignals,
                                  [](int s) { return s < kOneShotSignals; }));
OneShot g_one_shot[kOneShotSignals][2];
std::atomic<unsigned> g_one_shots_set[kOneShotSignals];  // which of the two is next

template <int kTurn>
void run_once(int sig, siginfo_t* info, void* context);
constexpr stop_signals::Catcher kWrappers[2] = {run_once<0>, run_once<1>};

// Which wrapper this action is: 0 or 1, -1 if none.
int wrapper_of(const struct sigaction& a) {
  if (!(a.sa_flags & SA_SIGINFO)) return -1;
  return a.sa_sigaction == kWrappers[0] ? 0 : a.sa_sigaction == kWrappers[1] ? 1 : -1;
}

#if defined(__x86_64__)
// An action as the kernel holds it (x86-64's rt_sigaction), read and written without the C
// library's copies of it: the wrapper runs on whatever stack the program gave its handler, which
// may be the smallest alternate stack there is (MINSIGSTKSZ: a review's, 480 bytes more than
// plain crashed a one-shot handler's on one).
struct KernelAction {
  void* handler;
  unsigned long flags;
  void* restorer;
  std::uint64_t mask;
};
constexpr unsigned long kRestorer = 0x04000000;  // SA_RESTORER: the C library's return path
#endif

// The catcher back where this wrapper of sig's one-shot handler stands. Not over what the
// program set meanwhile: a handler of another signal delivered with it, and run first, may have.
void catcher_back(int sig, stop_signals::Catcher wrapper) {
  ErrnoKeeper keep;  // the handler finds the errno of the code it interrupted
#if defined(__x86_64__)
  KernelAction now;
  if (syscall(SYS_rt_sigaction, sig, nullptr, &now, sizeof now.mask) != 0 ||
      now.handler != reinterpret_cast<void*>(wrapper))
    return;
  now.handler = reinterpret_cast<void*>(g_catcher.load(std::memory_order_relaxed));
  now.flags = (now.flags & kRestorer) | kCatcherFlags;
  now.mask = 0;
  syscall(SYS_rt_sigaction, sig, &now, nullptr, sizeof now.mask);
#else
  struct sigaction now;
  if (real_sigaction(sig, nullptr, &now) != 0 || !(now.sa_flags & SA_SIGINFO) ||
      now.sa_sigaction != wrapper)
    return;
  const struct sigaction mine = catcher_action();
  real_sigaction(sig, &mine, nullptr);
#endif
}

// What the kernel does as it delivers a signal to a one-shot handler, a moment later: the default
// action back (the catcher, in its place), then the handler, called as the kernel calls every
// handler on x86-64 (with the signal's information and context, SA_SIGINFO or not: Node's is
// declared so and installed without it). A second signal that came to another thread before the
// default action was back finds it all the same. A change of the action meanwhile leaves the
// handler to run: the kernel had chosen it (a review's: a handler of another signal, run first,
// set one, and the program's one-shot handler never ran).
template <int kTurn>
void run_once(int sig, siginfo_t* info, void* context) {
  OneShot& slot = g_one_shot[sig][kTurn];
  if (!slot.armed.exchange(false, std::memory_order_acq_rel))
    return g_catcher.load(std::memory_order_relaxed)(sig, info, context);
  catcher_back(sig, kWrappers[kTurn]);
  slot.handler.load(std::memory_order_relaxed)(sig, info, context);
}

bool is_one_shot(const struct sigaction& a) {
  return (a.sa_flags & SA_RESETHAND) && installs(a.sa_handler);  // one word, SA_SIGINFO or not
}

// The action that stands for the program's one-shot handler act for sig (a stop signal the
// catcher takes): the next of its two wrappers, its slot noted as the program set it.
struct sigaction wrapped(int sig, const struct sigaction& act) {
  const unsigned turn = g_one_shots_set[sig].fetch_add(1, std::memory_order_relaxed) & 1;
  OneShot& slot = g_one_shot[sig][turn];
  slot.handler.store(act.sa_sigaction, std::memory_order_relaxed);
  slot.flags.store(act.sa_flags, std::memory_order_relaxed);
  slot.armed.store(true, std::memory_order_release);
  struct sigaction mine = act;
  mine.sa_sigaction = kWrappers[turn];
  mine.sa_flags = (act.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
  return mine;
}

// What the program is shown of an old action of sig: the default action for the catcher, and
// the program's own handler and flags for a wrapper of its one-shot handler.
void shown(int sig, struct sigaction* old) {
  if (!old || !(old->sa_flags & SA_SIGINFO)) return;
  const stop_signals::Catcher catcher = g_catcher.load(std::memory_order_relaxed);
  if (catcher && old->sa_sigaction == catcher) {  // (none: a default action with SA_SIGINFO)
    *old = {};
    old->sa_handler = SIG_DFL;
    sigemptyset(&old->sa_mask);
  } else if (const int turn = wrapper_of(*old); turn >= 0) {
    const OneShot& slot = g_one_shot[sig][turn];
    old->sa_sigaction = slot.handler.load(std::memory_order_relaxed);
    old->sa_flags = (old->sa_flags & ~SA_SIGINFO) |
                    (slot.flags.load(std::memory_order_relaxed) & SA_SIGINFO) | SA_RESETHAND;
  }
}

// Noted before the call: a signal may arrive the moment the kernel has the handler.
int change_action(std::atomic<SigactionFn>* real, const char* name, int sig,
                  const struct sigaction* act, struct sigaction* old) {
  if (act &&
      ((act->sa_flags & SA_SIGINFO) ? act->sa_sigaction != nullptr : installs(act->sa_handler)))
    pool::note_signal_handler();
  struct sigaction mine;
  if (act && catches(sig) && is_default(*act)) {
    act = &(mine = catcher_action());
  } else if (act && catches(sig) && is_one_shot(*act)) {
    act = &(mine = wrapped(sig, *act));
  }
  const SigactionFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  const int rc = fn(sig, act, old);
  if (rc == 0) shown(sig, old);
  return rc;
}

Handler change_disposition(std::atomic<SignalFn>* real, const char* name, int sig, Handler h) {
  // System V's: a one-shot handler (SA_RESETHAND | SA_NODEFER, as the C library sets it)
  const bool one_shot_form = real == &g_sysv_signal || real == &g___sysv_signal;
  if ((h == SIG_DFL || (one_shot_form && installs(h))) && catches(sig)) {
    struct sigaction act {};
    act.sa_handler = h;
    sigemptyset(&act.sa_mask);
    if (h != SIG_DFL) act.sa_flags = SA_RESETHAND | SA_NODEFER;
    struct sigaction old;
    if (change_action(&g_sigaction, "sigaction", sig, &act, &old) != 0) return SIG_ERR;
    if (real == &g_sigset) {  // sigset() with a disposition lets the signal through again
      sigset_t one, was;
      sigemptyset(&one);
      sigaddset(&one, sig);
      if (pthread_sigmask(SIG_UNBLOCK, &one, &was) == 0 && sigismember(&was, sig) == 1)
        return SIG_HOLD;  // what it answers for a signal that was held
    }
    return old.sa_handler;  // sa_sigaction's too: they share their storage
  }
  if (installs(h)) pool::note_signal_handler();
  const SignalFn fn = next_symbol(real, name);
  if (!fn) {
    errno = ENOSYS;
    return SIG_ERR;
  }
  const Handler was = fn(sig, h);
  if (was == SIG_ERR || !catches(sig)) return was;
  const auto word = reinterpret_cast<std::uintptr_t>(was);
  if (word == reinterpret_cast<std::uintptr_t>(g_catcher.load(std::memory_order_relaxed)))
    return SIG_DFL;
  for (int turn : {0, 1})
    if (word == reinterpret_cast<std::uintptr_t>(kWrappers[turn]))
      return reinterpret_cast<Handler>(
          reinterpret_cast<std::uintptr_t>(g_one_shot[sig][turn].handler.load()));
  return was;
}

}  // namespace

namespace heapledger::detail::stop_signals {

namespace {

// Which of kSignals the catcher takes in this process: the faults only as the init of a PID
// namespace (pid 1 there: a container's first process, `unshare --pid --fork`). The kernel drops
// every signal sent to it at the default action, but delivers it to a handler: the catcher's
// interrupted its pause() or sleep() (EINTR) where plainly nothing happens (a review's), and
// before that wrote a report "ended by SIGTERM" of a process that ran on (a user trial's). A fault
// the kernel raises ends it all the same, with its report.
std::uint64_t signals_to_take() {
  const bool init = getpid() == 1;
  std::uint64_t taken = 0;
  for (int sig : kSignals)
    if (!init || is_fault(sig)) taken |= bit(sig);
  return taken;
}

// The catcher for each signal it takes whose action is the default now; a one-shot handler
// there is wrapped (see wrapped()).
void install() {
  const struct sigaction mine = catcher_action();
  for (int sig : kSignals) {
    if (!catches(sig)) continue;
    struct sigaction now;
    if (real_sigaction(sig, nullptr, &now) != 0) continue;
    if (is_default(now)) {
      real_sigaction(sig, &mine, nullptr);
    } else if (is_one_shot(now)) {
      const struct sigaction wrapper = wrapped(sig, now);
      real_sigaction(sig, &wrapper, nullptr);
    }
  }
}

}  // namespace

// One-shot handlers set before (none, preloaded: the tracker starts first) are wrapped too.
void take(Catcher catcher) {
  pool::note_signal_handler();  // the catcher allocates (the report), as any handler may
  g_taken.store(signals_to_take());
  g_catcher.store(catcher);
  install();
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

void after_fork() {
  if (!g_catcher.load(std::memory_order_relaxed)) return;
  const std::uint64_t had = g_taken.load(), want = signals_to_take();
  if (had == want) return;
  g_taken.store(want);
  for (int sig : kSignals)
    if ((had & ~want) & bit(sig)) release(sig);
  install();
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
