// A thread on its way out when the leak scan stops the others. glibc's thread exit blocks every
// signal but SIGSETXID (33) for good, so the signal the scan stops threads with under a seccomp
// filter never reaches it; a detached one then frees its stack under the stack cache's lock, and
// waits there until the scan ends if the scan parked a thread inside pthread_create holding it.
// The scan counted such threads among those that could not be stopped ("results may hide
// leaks"; up to a third of threads_ending_at_exit's) and waited its whole timeout for them. That
// moment cannot be timed from outside, so this thread takes the same mask itself
// (rt_sigprocmask directly: glibc's sigprocmask keeps 32 and 33 open) and sleeps on a futex no
// one wakes, holding the one pointer to a block on its stack; main leaks one block.
//   thread_exiting_at_scan            the scan stops threads with ptrace
//   thread_exiting_at_scan seccomp    under a seccomp filter: it stops them with its signal
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_signal_stop.h"
#include "hl_sink.h"

static atomic_int g_ready;
static int g_never;  // the futex word no one wakes

__attribute__((noinline)) static void* held_by_exiting_thread(void) { return malloc(2222); }

static void* on_its_way_out(void* arg) {
  (void)arg;
  void* volatile held = held_by_exiting_thread();
  const uint64_t mask =
      ~((UINT64_C(1) << (SIGKILL - 1)) | (UINT64_C(1) << (SIGSTOP - 1)) | (UINT64_C(1) << 32));
  if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &mask, NULL, sizeof mask) != 0) abort();
  atomic_store(&g_ready, 1);
  for (;;) syscall(SYS_futex, &g_never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  return (void*)held;
}

__attribute__((noinline)) static void leaked_by_main(void) {
  void* p = malloc(777);
  memset(p, 7, 777);
  hl_sink(p);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "seccomp") == 0 && hl_force_signal_stop() != 0) {
    perror("seccomp");
    return 1;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, on_its_way_out, NULL) != 0) return 1;
  while (!atomic_load(&g_ready)) usleep(1000);
  leaked_by_main();
  puts("main returns");
  return 0;
}
