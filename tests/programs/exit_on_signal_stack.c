// exit() from a signal handler running on an alternate signal stack. The thread's own stack then
// holds the frames the signal interrupted, live, and below them what returned frames left there.
// The exit scan counted that stack whole: a stale copy of a dropped pointer kept a definite leak
// "still reachable" (a review's, by a hardware watchpoint).
//   stale:      dropped_below_sp's block (321 bytes) is dropped in a frame that returns, its copies
//               left below main's stack pointer; SIGUSR1's handler, on a mapped alternate stack,
//               calls exit(0). Nothing holds the block: definitely lost.
//   autodisarm: the same with the alternate stack installed with SS_AUTODISARM (inside the
//               handler, sigaltstack() reports none).
//   in_frame:   the alternate stack is an array in a caller's frame; held_while_interrupted's
//               block (654 bytes) is held only by the frame the signal interrupted, below that
//               array. Counting the stack from the handler's frames up left it out: reachable.
//   nested:     as stale, with the exit() four signals deep, each handler on the alternate stack
//               raising the next: the frame on the thread's own stack is the outermost one.
//   blocked:    dropped_in_red_zone's block (777 bytes) leaves its copies just below the frame
//               that then waits in sigsuspend (a raw system call), within 128 bytes of its stack
//               pointer, for a timer's SIGALRM, blocked until then (so that it comes inside the
//               call), whose handler calls exit(0). A frame blocked in a system call has no red
//               zone in use: definitely lost. (The last two: a review's.)
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static void* volatile g_sink;

static int g_depth;  // nested: signals raised so far

static void exit_now(int sig) {
  (void)sig;
  if (g_depth > 0 && g_depth < 4) {
    static const int kNext[] = {0, SIGUSR2, SIGHUP, SIGWINCH};
    raise(kNext[g_depth++]);
  }
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

__attribute__((noinline)) void* dropped_in_red_zone(void) { return malloc(777); }

// Copies in the 96 bytes below the frame pointer of a frame at the depth wait_in_sigsuspend's is.
__attribute__((noinline)) void drop_in_red_zone(void) {
  void* volatile area[12];
  void* p = dropped_in_red_zone();
  for (int i = 0; i < 12; ++i) area[i] = p;
  __asm__ volatile("" : : "r"(area) : "memory");
}

__attribute__((noinline)) void wait_in_sigsuspend(const sigset_t* mask) {
  long call = SYS_rt_sigsuspend;
  __asm__ volatile("syscall" : "+a"(call) : "D"(mask), "S"(8L) : "rcx", "r11", "memory");
}

static int on_alternate_stack(void* base, size_t size, int flags) {
  stack_t ss = {.ss_sp = base, .ss_size = size, .ss_flags = flags};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = exit_now;
  sa.sa_flags = SA_ONSTACK;
  static const int kSignals[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGALRM};
  for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i)
    if (sigaction(kSignals[i], &sa, NULL) != 0) return 0;
  return sigaltstack(&ss, NULL) == 0;
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
  if (strcmp(mode, "blocked") == 0) {
    sigset_t alarm, during;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alarm, &during);
    sigdelset(&during, SIGALRM);
    const struct itimerval soon = {{0, 0}, {0, 1000}};
    setitimer(ITIMER_REAL, &soon, NULL);
    drop_in_red_zone();
    wait_in_sigsuspend(&during);
    return 2;
  }
  drop_leaving_copies();
  if (strcmp(mode, "nested") == 0) g_depth = 1;
  raise(SIGUSR1);
  return 2;
}
