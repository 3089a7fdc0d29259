// A signal handler that mallocs and frees between every two instructions of the program's own
// malloc and free calls (x86's trap flag: SIGTRAP after each instruction), and checks that no block
// is ever handed to two owners at once. Runs of allocations then of frees, through empty and
// full thread caches; the handler alternately takes two blocks and gives back one, then gives
// back two and takes one. Everything is freed at the end. Prints
// "signal_every_instruction: N calls stepped, shared=S" and exits 1 if any block had two owners.
// IDLE=1: a second thread waits meanwhile (the process is multi-threaded: no single-thread paths).
// HOW: how the handler is installed: 0 sigaction, 1 signal, 2 sysv_signal, 3 __sysv_signal (what
// signal() is in strict ISO C), 4 bsd_signal, 5 sigset, 6 ssignal, 7 __sigaction. Through the
// signal() family it installs itself again at each signal (those with SysV semantics reset it).
//   signal_every_instruction [ROUNDS [RUN [SIZE [IDLE [HOW]]]]]
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kMax = 1024 };
static void* g_mine[kMax];  // the program's blocks
static volatile int g_n_mine;
static void* g_theirs[kMax];  // the handler's
static volatile int g_n_theirs;
static size_t g_size = 48;
static unsigned long g_traps, g_shared;

static int holds(void* const* v, int n, const void* p) {
  for (int i = 0; i < n; ++i)
    if (v[i] == p) return 1;
  return 0;
}

static void take(void** mine, volatile int* n, void* const* others, int n_others, void* p) {
  if (!p) {
    static const char kMessage[] = "signal_every_instruction: malloc failed\n";
    (void)!write(2, kMessage, sizeof kMessage - 1);
    _exit(3);
  }
  if (holds(others, n_others, p) || holds(mine, *n, p)) ++g_shared;
  if (*n < kMax) mine[(*n)++] = p;
}

typedef void (*handler_fn)(int);
extern handler_fn bsd_signal(int, handler_fn);  // not declared by glibc's headers any more
extern handler_fn __sysv_signal(int, handler_fn);
extern handler_fn sysv_signal(int, handler_fn);
extern handler_fn sigset(int, handler_fn);
extern handler_fn ssignal(int, handler_fn);
extern int __sigaction(int, const struct sigaction*, struct sigaction*);
static handler_fn (*g_install)(int, handler_fn);

static void on_step(int sig) {
  if (g_install) g_install(sig, on_step);
  const unsigned long k = g_traps++ % 6;
  if (k < 2 || k == 5)
    take(g_theirs, &g_n_theirs, g_mine, g_n_mine, malloc(g_size));
  else if (g_n_theirs > 0)
    free(g_theirs[--g_n_theirs]);
}

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done_cond = PTHREAD_COND_INITIALIZER;
static int g_done;

static void* idle(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_lock);
  while (!g_done) pthread_cond_wait(&g_done_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

static inline void step_on(void) {
  __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
}
static inline void step_off(void) {
  __asm__ volatile("pushfq; andq $-0x101, (%%rsp); popfq" ::: "memory", "cc");
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 3;
  int run = argc > 2 ? atoi(argv[2]) : 200;
  if (argc > 3) g_size = (size_t)atol(argv[3]);
  pthread_t idler;
  const int with_idler = argc > 4 && atoi(argv[4]) != 0;
  if (with_idler && pthread_create(&idler, NULL, idle, NULL) != 0) return 2;
  if (run > kMax) run = kMax;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_step;
  sigemptyset(&sa.sa_mask);
  static handler_fn (*const installers[])(int, handler_fn) = {
      NULL, signal, sysv_signal, __sysv_signal, bsd_signal, sigset, ssignal};
  const int how = argc > 5 ? atoi(argv[5]) : 0;
  if (how < 0 || how > 7) return 2;
  if (how == 0 && sigaction(SIGTRAP, &sa, NULL) != 0) return 2;
  if (how == 7 && __sigaction(SIGTRAP, &sa, NULL) != 0) return 2;
  if (how > 0 && how < 7) {
    g_install = installers[how];
    if (g_install(SIGTRAP, on_step) == SIG_ERR) return 2;
  }
  free(malloc(g_size));  // the lazy binding of malloc and free, outside the stepped calls
  long calls = 0;
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < run; ++i) {
      step_on();
      void* p = malloc(g_size);
      step_off();
      take(g_mine, &g_n_mine, g_theirs, g_n_theirs, p);
      memset(p, 0x5a, g_size);
      ++calls;
    }
    while (g_n_mine > 0) {
      void* p = g_mine[g_n_mine - 1];
      --g_n_mine;
      step_on();
      free(p);
      step_off();
      ++calls;
    }
  }
  while (g_n_theirs > 0) free(g_theirs[--g_n_theirs]);
  if (with_idler) {
    pthread_mutex_lock(&g_lock);
    g_done = 1;
    pthread_cond_signal(&g_done_cond);
    pthread_mutex_unlock(&g_lock);
    pthread_join(idler, NULL);
  }
  printf("signal_every_instruction: %ld calls stepped, shared=%lu\n", calls, g_shared);
  return g_shared != 0 || g_traps < (unsigned long)calls;
}
