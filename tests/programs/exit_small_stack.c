// exit() where little stack is left: from a thread created with a small stack, or from a signal
// handler running on an 8 KiB alternate stack. Either way, three 100-byte blocks from
// small_stack_leak_site are lost first, and the process exits with status 7.
//   exit_small_stack thread [KIB [USED]]    a thread with a KIB stack (default 16) calls exit(7),
//                                           from USED bytes deep in recursion (default 0)
//   exit_small_stack signal          a SIGUSR1 handler on an 8 KiB sigaltstack calls exit(7)
//   exit_small_stack signal_timer    the same on 256 KiB, with a 200 us timer whose SA_ONSTACK
//                                    handler writes 24 KiB of that stack, started before exit
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

__attribute__((noinline)) void small_stack_leak_site(void) {
  for (int i = 0; i < 3; i++) {
    char* volatile lost = malloc(100);
    memset(lost, 1, 100);
  }
}

static size_t g_used;         // bytes of stack to use before exit()
static volatile int g_never;  // a way out the compiler cannot rule out

__attribute__((noinline)) static void exit_deep(size_t left) {
  volatile char pad[512];
  pad[0] = 1;
  if (g_never) return;
  if (left <= sizeof pad) exit(7);
  exit_deep(left - sizeof pad);
  pad[1] = 2;  // not a tail call
}

static void* exit_from_thread(void* arg) {
  (void)arg;
  small_stack_leak_site();
  fflush(stdout);
  // Straight from here unless asked: exit_deep's frame would hold what the leak site left on
  // the stack (its pad is never written), a root for the leaked blocks.
  if (g_used == 0) exit(7);
  exit_deep(g_used);
  return NULL;
}

static volatile sig_atomic_t g_ticks;

static void tick(int sig) {
  (void)sig;
  volatile char scribble[24 * 1024];
  for (size_t i = 0; i < sizeof scribble; i++) scribble[i] = 0x5a;
  g_ticks++;
}

static int g_timer;

static void exit_from_handler(int sig) {
  (void)sig;
  small_stack_leak_site();
  if (g_timer) {
    struct itimerval every = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &every, NULL);
  }
  exit(7);
}

int main(int argc, char** argv) {
  if (argc > 1 && (strcmp(argv[1], "signal") == 0 || strcmp(argv[1], "signal_timer") == 0)) {
    g_timer = strcmp(argv[1], "signal_timer") == 0;
    const size_t size = g_timer ? 256 * 1024 : 8192;
    char* m = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) != 0) return 1;  // the guard page
    stack_t ss = {.ss_sp = m + 4096, .ss_size = size, .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_from_handler;
    sa.sa_flags = SA_ONSTACK;
    if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0) return 1;
    sa.sa_handler = tick;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0) return 1;
    printf("raising\n");
    fflush(stdout);
    raise(SIGUSR1);
    return 1;
  }
  const size_t kib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
  g_used = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
  pthread_attr_t attr;
  pthread_t t;
  if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, kib * 1024) != 0) return 1;
  printf("thread with %zu KiB of stack\n", kib);
  if (pthread_create(&t, &attr, exit_from_thread, NULL) != 0) return 1;
  pthread_join(t, NULL);
  return 1;
}
