// exit() from a signal handler running on an alternate signal stack. The thread's own stack then
// holds the frames the signal interrupted, live, and below them what returned frames left there.
// The exit scan counted that stack whole: a stale copy of a dropped pointer kept a definite leak
// "still reachable" (a review's, by a hardware watchpoint).
//   stale:      dropped_below_sp's block (321 bytes) is dropped in a frame that returns, its copies
//               left below main's stack pointer; SIGUSR1's handler, on a mapped alternate stack,
//               calls exit(0). Nothing holds the block: definitely lost.
//   autodisarm: the same with the alternate stack installed with SS_AUTODISARM (inside the
//               handler, sigaltstack() reports none).
//   in_frame:   the alternate stack is an array in main's frame; held_while_interrupted's block
//               (654 bytes) is held only by the frame the signal interrupted, below that array.
//               Counting the stack from the handler's frames up left it out: it is reachable.
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static void* volatile g_sink;

static void exit_now(int sig) {
  (void)sig;
  exit(0);
}

__attribute__((noinline)) void* dropped_below_sp(void) { return malloc(321); }

// Copies of the pointer at the bottom of an 8 KiB frame that returns: far deeper than raise()
// reaches later.
__attribute__((noinline)) void drop_leaving_copies(void) {
  void* volatile area[1024];
  void* p = dropped_below_sp();
  for (int i = 0; i < 1024; ++i) area[i] = i < 64 ? p : 0;
  __asm__ volatile("" : : "r"(area) : "memory");
}

__attribute__((noinline)) void* held_while_interrupted(void) { return malloc(654); }

__attribute__((noinline)) void hold_and_raise(void) {
  void* volatile held = held_while_interrupted();
  raise(SIGUSR1);
  g_sink = held;  // not reached: the handler exits
}

static int on_alternate_stack(void* base, size_t size, int flags) {
  stack_t ss = {.ss_sp = base, .ss_size = size, .ss_flags = flags};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = exit_now;
  sa.sa_flags = SA_ONSTACK;
  return sigaltstack(&ss, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0;
}

// Its own frame, not main's: what start-up left where main's frame would hold an unwritten array
// was a root there (a stale copy of a pointer to a block freed since, whose address the dropped
// block took).
__attribute__((noinline)) static int alternate_stack_in_frame(void) {
  _Alignas(16) char alternate[64 * 1024];
  if (!on_alternate_stack(alternate, sizeof alternate, 0)) return 1;
  hold_and_raise();
  return 2;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "stale";
  if (strcmp(mode, "in_frame") == 0) return alternate_stack_in_frame();
  const size_t size = 64 * 1024;
  void* m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const int flags = strcmp(mode, "autodisarm") == 0 ? (int)SS_AUTODISARM : 0;
  if (m == MAP_FAILED || !on_alternate_stack(m, size, flags)) return 1;
  drop_leaving_copies();
  raise(SIGUSR1);
  return 2;
}
