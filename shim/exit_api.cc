// _exit and _Exit, interposed: they end the process without exit handlers, so a thread calling
// one while another writes the exit report (a watchdog, or a thread the leak scan's signal woke
// early from a sleep) would end the process under the report and lose it. It waits for the
// report first, then ends the process as libc's _exit does, with the raw system call: no
// allocation, no lock, safe in a vfork child (which never waits: the report is its parent's).
// libc's own exit() reaches its _exit internally, not through these.
// exit, interposed: a second thread calling it while the first is on its way out waits for the
// first one's report (tracker::before_exit), then goes on into libc's exit.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "tracker/tracker.h"

using namespace heapledger::detail;

extern "C" HL_EXPORT [[noreturn]] void _exit(int status) {
  status = tracker::before_immediate_exit(status);
  for (;;) {
    syscall(SYS_exit_group, status);
    syscall(SYS_exit, status);
  }
}

extern "C" HL_EXPORT [[noreturn]] void _Exit(int status) { _exit(status); }

namespace heapledger::detail {
namespace {
using ExitFn = void (*)(int);
std::atomic<ExitFn> g_libc_exit{nullptr};
}  // namespace

// Looked up at start (resolve_libc_exit, from the library's constructor), not at the first
// exit(): dlsym takes KiB of stack, which a thread that calls exit() with little left does not
// have (a crash with 8 KiB of a 16 KiB thread stack in use, where plain glibc exits).
ExitFn libc_exit() { return next_symbol(&g_libc_exit, "exit"); }
void resolve_libc_exit() { libc_exit(); }

}  // namespace heapledger::detail

extern "C" HL_EXPORT [[noreturn]] void exit(int status) noexcept {
  tracker::before_exit();
  if (ExitFn fn = libc_exit()) fn(status);
  _exit(status);  // no libc exit to be found: end it without the handlers
}
