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

// From now on: catcher for each of kSignals (or only the faults: SIGSEGV, SIGBUS, SIGILL,
// SIGFPE) whose action is the default now, and again whenever the program sets the default
// action. Once, at the tracker's start.
void take(Catcher catcher, bool faults_only = false);
// The default action for sig (any signal), with no catcher put in its place: the catcher's own way
// out before it raises the signal again, and the exit-time catchers' (tracker/collect.cc).
void give_back(int sig);
// The default action for sig where the catcher stands (a handler of the program's is left alone):
// heapledger's own abort() (on_error=abort) ends the process with its one line.
void release(int sig);
// From now on the faults only: the default action back for the others wherever the catcher
// stands, and no catcher put in their default action's place again (a child forked as the init of
// a new PID namespace: see tracker::take_stop_signals).
void keep_faults_only();

}  // namespace heapledger::detail::stop_signals
