// The signals a user stops a program with: Ctrl-C (SIGINT), kill and timeout (SIGTERM), a terminal
// that went away (SIGHUP), Ctrl-\ (SIGQUIT); and those a program crashes with: abort() (SIGABRT)
// and the faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE). Where the program leaves one at its default
// action, the tracker's catcher takes it, so that the process writes its report before the signal
// ends it (tracker/collect.cc). The program never sees the catcher: the interposed sigaction,
// signal and their other forms (signal_api.cc) show the default action where it is, and a program
// that sets the default action gets the catcher back in its place. A program that sets a handler of
// its own (or SIG_IGN) has it, as without heapledger.
#pragma once

#include <signal.h>

namespace heapledger::detail::stop_signals {

using Catcher = void (*)(int, siginfo_t*, void*);

constexpr int kSignals[] = {SIGHUP,  SIGINT, SIGQUIT, SIGTERM, SIGABRT,
                            SIGSEGV, SIGBUS, SIGILL,  SIGFPE};
// The faults among them: the ones the kernel raises itself (and forces on a namespace's pid 1).
constexpr bool is_fault(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
}

// From now on: catcher for each of kSignals (only the faults as a PID namespace's pid 1: see
// signal_api.cc) whose action is the default now, and again whenever the program sets the
// default action. Once, at the tracker's start.
void take(Catcher catcher);
// The default action for sig (any signal), with no catcher put in its place: the catcher's own way
// out before it raises the signal again, and the exit-time catchers' (tracker/collect.cc).
void give_back(int sig);
// The default action for sig where the catcher stands (a handler of the program's is left alone):
// heapledger's own abort() (on_error=abort) ends the process with its one line.
void release(int sig);
// In a forked child: the signals taken as take() would for it now. One forked as a new PID
// namespace's pid 1 keeps the faults only; one forked by such a pid 1 (pid 2 and up) takes them
// all, as any process (it had no report when SIGTERM ended it: a review's).
void after_fork();

}  // namespace heapledger::detail::stop_signals
