// _exit and _Exit, interposed: they end the process without exit handlers, so a thread calling
// one while another writes the exit report (a watchdog, or a thread the leak scan's signal woke
// early from a sleep) would end the process under the report and lose it. It waits for the
// report first, then ends the process as libc's _exit does, with the raw system call: no
// allocation, no lock, safe in a vfork child (which never waits: the report is its parent's).
// libc's own exit() reaches its _exit internally, not through these.
// exit, interposed: a second thread calling it while the first is on its way out waits for the
// first one's report (tracker::before_exit), then goes on into libc's exit.
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "shim/config.h"
#include "tracker/tracker.h"

using namespace heapledger::detail;

extern "C" HL_EXPORT [[noreturn]] void _exit(int status) {
  tracker::before_immediate_exit();
  for (;;) {
    syscall(SYS_exit_group, status);
    syscall(SYS_exit, status);
  }
}

extern "C" HL_EXPORT [[noreturn]] void _Exit(int status) { _exit(status); }

extern "C" HL_EXPORT [[noreturn]] void exit(int status) noexcept {
  using Fn = void (*)(int);
  static std::atomic<Fn> real{nullptr};
  tracker::before_exit();
  Fn fn = real.load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "exit"));
    real.store(fn, std::memory_order_release);
  }
  if (fn) fn(status);
  _exit(status);  // no libc exit to be found: end it without the handlers
}
