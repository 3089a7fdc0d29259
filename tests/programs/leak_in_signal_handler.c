// A signal handler that leaks 77 bytes, from a signal the program raises itself. The default
// unwinder ends a handler's stack at the signal trampoline (its caller); unwind=libunwind walks
// on into the code the signal interrupted (raise_it, main).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline)) static void leak_in_handler(int sig) {
  (void)sig;
  hl_sink(malloc(77));
}

__attribute__((noinline)) static void raise_it(void) { raise(SIGUSR1); }

int main(void) {
  signal(SIGUSR1, leak_in_handler);
  raise_it();
  puts("leak_in_signal_handler: done");
  return 0;
}
