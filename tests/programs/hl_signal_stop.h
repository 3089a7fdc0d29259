// For test programs that need the leak scan's other way of stopping threads: heapledger uses
// ptrace from a helper task, except under a seccomp filter (one could kill the process for
// ptrace or clone); then a signal, which ends a sleep, poll, select or pause early. A filter
// that allows everything changes nothing else.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

__attribute__((unused)) static int hl_force_signal_stop(void) {
  struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {1, &allow};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
