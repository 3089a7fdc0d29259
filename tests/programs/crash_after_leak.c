// A program that crashes after it leaked: lost_before_crash's block (123 bytes) is dropped,
// kept_before_crash's (456 bytes) held by a global; then, by mode:
//   abort         abort()
//   segv          a write through a null pointer
//   fpe           an integer division by zero
//   raise         raise(SIGSEGV): sent, not a fault
//   thread        a second thread writes through a null pointer while main waits in pthread_join
//   bad_stack     a SIGUSR1 handler on an alternate stack the kernel cannot write to: raising
//                 SIGUSR1 ends the process with a SIGSEGV the kernel sends (SI_KERNEL), with no
//                 instruction to fault again
//   gp            a read through a pointer that is not canonical: a general protection fault
//                 (a SIGSEGV the kernel sends itself too, SI_KERNEL, but its instruction
//                 faults again)
//   own_handler   a SIGSEGV handler of its own recovers from the fault (siglongjmp): prints
//                 "recovered" and returns 0 from main
// Prints "crashing" first (flushed), so that a test can see the program got that far.
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hl_sink.h"

static void* volatile g_kept;
static int* volatile g_null;
static volatile int g_zero;
static sigjmp_buf g_back;

__attribute__((noinline)) static void lost_before_crash(void) { hl_sink(malloc(123)); }
__attribute__((noinline)) static void kept_before_crash(void) { g_kept = malloc(456); }

__attribute__((noinline)) static void fault(void) { *g_null = 1; }
__attribute__((noinline)) static int read_far(void) {
  return *(volatile int*)(uintptr_t)0x4141414141414141ull;
}
__attribute__((noinline)) static int divide(int a, int b) { return a / b; }

static void* fault_on_thread(void* unused) {
  (void)unused;
  fault();
  return NULL;
}

static void recover(int sig) {
  (void)sig;
  siglongjmp(g_back, 1);
}

static void never_runs(int sig) {
  (void)sig;
  if (write(1, "handled\n", 8) < 0) _exit(8);
}

static void raise_on_bad_stack(void) {
  stack_t stack;
  memset(&stack, 0, sizeof stack);
  stack.ss_size = 1 << 16;
  stack.ss_sp = mmap(NULL, stack.ss_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack.ss_sp == MAP_FAILED || sigaltstack(&stack, NULL) != 0) exit(4);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = never_runs;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  printf("went on\n");
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "abort";
  lost_before_crash();
  kept_before_crash();
  if (strcmp(mode, "own_handler") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = recover;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(g_back, 1) == 0) fault();
    printf("recovered\n");
    return 0;
  }
  printf("crashing\n");
  fflush(stdout);
  if (strcmp(mode, "abort") == 0) abort();
  if (strcmp(mode, "segv") == 0) fault();
  if (strcmp(mode, "fpe") == 0) printf("%d\n", divide(1, g_zero));
  if (strcmp(mode, "raise") == 0) raise(SIGSEGV);
  if (strcmp(mode, "bad_stack") == 0) raise_on_bad_stack();
  if (strcmp(mode, "gp") == 0) printf("%d\n", read_far());
  if (strcmp(mode, "thread") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, fault_on_thread, NULL);
    pthread_join(t, NULL);
  }
  return 3;
}
