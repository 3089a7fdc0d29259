// A pointer the program dropped, whose last copy lies just below main's stack pointer while main
// is blocked in a system call at exit: a leaf function wrote it there (in main's red zone, as
// functions called before the blocking call leave their values), then main waits in pause()
// (the raw system call, so main's own frame is the innermost one) and another thread calls
// exit(42) 100 ms later. The 700-byte block from lost_site is definitely lost. With "signal", the
// scan stops main with its signal instead of ptrace (see hl_signal_stop.h): pause() then returns
// early, and main waits again.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_signal_stop.h"
#include "hl_sink.h"

__attribute__((noinline)) void* lost_site(void) {
  void* p = malloc(700);
  if (p) memset(p, 7, 700);
  return p;
}

static void* exit_soon(void* arg) {
  (void)arg;
  usleep(100000);
  exit(42);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "signal") == 0 && hl_force_signal_stop() != 0) return 1;
  pthread_t t;
  if (pthread_create(&t, NULL, exit_soon, NULL) != 0) return 1;
  void* p = lost_site();
  hl_leave_below(p);
  p = NULL;
  // Blocks until the process ends; no register keeps p (the argument registers are zeroed).
  for (;;) {
    long nr = SYS_pause;
    __asm__ volatile("syscall"
                     : "+a"(nr)
                     : "D"(0L), "S"(0L), "d"(0L)
                     : "rcx", "r11", "r8", "r9", "r10", "memory");
  }
}
