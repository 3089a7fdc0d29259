// _exit and _Exit, interposed: they end the process without exit handlers, so a thread calling
// one while another writes the exit report (a watchdog, or a thread the leak scan's signal woke
// early from a sleep) would end the process under the report and lose it. It waits for the
// report first, then ends the process as libc's _exit does, with the raw system call: no
// allocation, no lock, safe in a vfork child (which never waits: the report is its parent's).
// libc's own exit() reaches its _exit internally, not through these.
#include <sys/syscall.h>
#include <unistd.h>

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
