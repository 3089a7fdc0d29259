// A process that ends while its exit report is being written: main leaks one 100-byte block and
// ends while another thread is busy, in one of these ways:
//   exit_while_reporting        a watchdog sleeps; if the sleep ends early (the leak scan's signal
//                               interrupts it) it calls exit(7) at once, while main still writes
//                               the report; main returns from main
//   exit_while_reporting quick  the same with quick_exit(7) in the watchdog and quick_exit(0) in main
//   exit_while_reporting _exit  the same with _exit(7) in the watchdog (_Exit(7) with "_Exit")
//   exit_while_reporting fork   a thread forks children that allocate, free and _exit(0) at once,
//                               over and over, while main returns: a child forked mid-report must
//                               allocate and exit as fast as ever. Not exit(0): a child forked
//                               while main is in exit() can inherit glibc's exit-handler lock
//                               held (fork does not take it) and hang in exit() for good (without
//                               heapledger, 30 of 300 runs here); _exit takes no lock
// Plain, each exits 0 at once. The watchdog's sleep must end early: the program makes heapledger
// stop threads with its signal (see hl_signal_stop.h), not with ptrace, which would let it sleep.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_signal_stop.h"

static int g_quick;
static const char* g_mode;

static void* watchdog(void* arg) {
  (void)arg;
  if (sleep(30) > 0) {  // woken early
    if (g_quick) quick_exit(7);
    if (strcmp(g_mode, "_exit") == 0) _exit(7);
    if (strcmp(g_mode, "_Exit") == 0) _Exit(7);
    exit(7);
  }
  return NULL;
}

static void* forker(void* arg) {
  (void)arg;
  for (;;) {
    pid_t child = fork();
    if (child == 0) {
      free(malloc(64));
      _exit(0);
    }
    if (child > 0) waitpid(child, NULL, 0);
  }
  return NULL;
}

__attribute__((noinline)) void* leak_site(void) { return malloc(100); }

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "exit";
  g_mode = mode;
  if (hl_force_signal_stop() != 0) return 1;
  g_quick = strcmp(mode, "quick") == 0;
  pthread_t t;
  if (pthread_create(&t, NULL, strcmp(mode, "fork") == 0 ? forker : watchdog, NULL) != 0) return 1;
  usleep(20000);  // the watchdog is asleep, or the forks are going
  void* volatile leaked = leak_site();
  (void)leaked;
  leaked = NULL;
  puts("exit_while_reporting: main done");
  fflush(stdout);
  if (g_quick) quick_exit(0);
  return 0;
}
