// Signal handlers on small alternate stacks (SA_ONSTACK, 8 KiB: the classic SIGSTKSZ, with a
// guard page below, as crash handlers and runtimes set them up) that allocate. In main and in a
// second thread, 100 signals each; every handler mallocs and frees, and the first one in each
// thread leaks 24 bytes from signal_leak_site. Plain, it prints "handled 200" and exits 0.
//   small_signal_stack [BYTES [autodisarm]]    the alternate stacks' size (default 8192), and
//                                              whether they are installed with SS_AUTODISARM
//                                              (the kernel disarms one while its handler runs)
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static size_t g_size = 8192;
static int g_flags;  // SS_AUTODISARM, or 0
static volatile sig_atomic_t g_handled;
static __thread int t_leaked;

__attribute__((noinline)) void* signal_leak_site(void) { return malloc(24); }

static void handler(int sig) {
  (void)sig;
  if (!t_leaked) {
    t_leaked = 1;
    void* volatile lost = signal_leak_site();
    (void)lost;
  }
  char* q = strdup("allocated on a small signal stack");
  __asm__ volatile("" ::"r"(q) : "memory");
  free(q);
  g_handled++;
}

static int run_signals(void) {
  char* m = mmap(NULL, g_size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) != 0) return 1;  // the guard page
  stack_t ss = {.ss_sp = m + 4096, .ss_size = g_size, .ss_flags = g_flags};
  if (sigaltstack(&ss, NULL) != 0) return 1;
  for (int i = 0; i < 100; i++) raise(SIGUSR1);
  // What the handlers left on the stack would hold the leaked blocks (as any memory the program
  // keeps): it goes away.
  stack_t off = {.ss_flags = SS_DISABLE};
  if (sigaltstack(&off, NULL) != 0) return 1;
  return munmap(m, g_size + 4096);
}

static void* thread_main(void* arg) {
  (void)arg;
  return (void*)(long)run_signals();
}

int main(int argc, char** argv) {
  if (argc > 1) g_size = (size_t)atol(argv[1]);
  if (argc > 2 && strcmp(argv[2], "autodisarm") == 0)
    g_flags = (int)(1u << 31);  // SS_AUTODISARM (Linux 4.7)
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  if (run_signals() != 0) return 1;
  pthread_t t;
  void* result;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, &result) != 0 || result)
    return 1;
  printf("handled %d\n", (int)g_handled);
  return 0;
}
