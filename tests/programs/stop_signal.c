// A program stopped by a signal it leaves at its default action (Ctrl-C, kill, timeout).
// Allocates from named functions: 3 blocks of 100 bytes lost (lose), 1 of 200 held by a global
// (keep_global), 1 of 300 held only by a local variable of main's (keep_local), and SITES blocks of
// 10 + d bytes lost from call stacks of their own (recursion depth d; 200 make a text report
// larger than a pipe holds); then, by mode:
//   stop_signal wait     prints "ready" and waits for the signal
//   stop_signal churn    prints "ready", then mallocs and frees on two threads until the signal
//                        (it finds them inside the allocator: the report must still come)
//   stop_signal view     prints the dispositions it is shown for SIGTERM and SIGINT, as sigaction
//                        and signal() report them, sets a handler of its own for SIGINT, then the
//                        default action again, and raises SIGINT
//   stop_signal own      a SIGTERM handler of its own, which prints "handled" and exits with 7;
//                        prints "ready" and waits for the signal
//   stop_signal worker   a second thread waits too; prints "ready TID" (the second thread's id)
//   stop_signal dying    main blocks SIGTERM; threads that live a few hundred allocations each
//                        come and go until the signal (it finds one inside the allocator, which
//                        is gone a moment later)
//   stop_signal atexit   calls atexit() in a loop until the signal (it finds the thread holding the
//                        C library's lock on that list)
//   stop_signal late     a second thread installs a SIGTERM handler of its own (it prints "h")
//                        0.3 s after "ready" (the report a SIGTERM began meanwhile is still
//                        being written), and prints "installed"
//   stop_signal oneshot  one-shot handlers (SA_RESETHAND, as Node.js sets them for SIGTERM and
//                        SIGINT) for the four stop signals: each prints "cleanup" and what
//                        sigaction shows then, and raises the signal again
//   stop_signal sysv     the same handlers set with System V's signal() (one-shot, SA_NODEFER)
//   stop_signal once     one-shot handlers that print "once" and return: the process goes on, and
//                        the next such signal ends it
//   stop_signal oneshot_view  prints what sigaction and signal() show of a one-shot SIGTERM
//                        handler, and raises SIGTERM
//   stop_signal oneshot_hold  a one-shot SIGTERM handler ("once"); holds SIGTERM with
//                        sigset(SIG_HOLD), raises it, lets it through (sigrelse), returns 0
//   stop_signal oneshot_nested  a one-shot SIGINT handler ("once") and a SIGUSR1 handler that sets
//                        another for SIGINT ("other"); both raised while blocked, then let
//                        through together: SIGUSR1's runs first, then SIGINT's one-shot one (the
//                        kernel chose it as it delivered both); raises SIGINT again ("other")
//                        and returns 0
//   stop_signal oneshot_nested2  the same, with a one-shot handler set by SIGUSR1's ("other")
//   stop_signal spared   sends itself SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGABRT and SIGSEGV with
//                        kill(), all at their default actions; prints "spared" if it is still
//                        there (the init of a PID namespace is: the kernel drops them); then
//                        sleeps 0.5 s while a child sends it SIGTERM, and prints "slept" if the
//                        sleep was not cut short (no handler ran); the child then ends by a
//                        SIGTERM of its own, as "child: signal 15" says; returns 7
//   stop_signal oneshot_altstack N  a one-shot SIGTERM handler ("once") on an alternate stack of
//                        N bytes above a page it cannot touch; raises SIGTERM, prints "ok": how
//                        small a stack the handler runs on (a SIGSEGV below that); N 0: the
//                        smallest the system says a handler needs (_SC_MINSIGSTKSZ)
//   stop_signal default_flags  sets the default action for SIGUSR2 and SIGQUIT with SA_SIGINFO,
//                        SA_RESTART and SIGINT masked, and prints what sigaction shows of them
//   stop_signal MODE [SITES]
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hl_sink.h"

static void* volatile g_kept;

__attribute__((noinline)) static void lose(void) { hl_sink(malloc(100)); }
__attribute__((noinline)) static void keep_global(void) { g_kept = malloc(200); }
__attribute__((noinline)) static void* keep_local(void) { return malloc(300); }

static const char* name_of(void (*h)(int)) {
  return h == SIG_DFL ? "default" : h == SIG_IGN ? "ignored" : "a handler";
}

static void on_int(int sig) { (void)sig; }

static void on_term(int sig) {
  (void)sig;
  static const char line[] = "handled\n";
  if (write(1, line, sizeof line - 1) < 0) _exit(8);
  _exit(7);
}

static void say(const char* line) {
  if (write(1, line, strlen(line)) < 0) _exit(8);
}

// As Node.js's: cleans up, then lets the signal end the process.
static void cleanup_then_again(int sig) {
  struct sigaction now;
  sigaction(sig, NULL, &now);
  say(now.sa_handler == SIG_DFL ? "cleanup, default now\n" : "cleanup, still handled\n");
  raise(sig);
}

static void once(int sig) {
  (void)sig;
  say("once\n");
}

static const int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

static void set_one_shot(int sig, void (*h)(int)) {
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = h;
  sigfillset(&a.sa_mask);
  a.sa_flags = SA_RESETHAND;
  sigaction(sig, &a, NULL);
}

static void* churn(void* arg) {
  (void)arg;
  void* ring[64] = {0};
  for (unsigned i = 0;; ++i) {
    free(ring[i % 64]);
    ring[i % 64] = malloc(16 + i % 1000);
  }
  return NULL;
}

static void ready(void) {
  printf("ready\n");
  fflush(stdout);
}

static void* wait_for_ever(void* arg) {
  int* tid = arg;
  *tid = gettid();
  for (;;) pause();
  return NULL;
}

static void* live_briefly(void* arg) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &term, NULL);  // main's is blocked: the signal is these threads'
  (void)arg;
  for (int i = 0; i < 300; ++i) free(malloc(16 + (unsigned)i % 500));
  return NULL;
}

static void nothing(void) {}

static void print_h(int sig) {
  (void)sig;
  if (write(1, "h\n", 2) < 0) _exit(8);
}

static void* install_late(void* arg) {
  sigset_t term;  // the signal is main's: this thread runs on while main writes the report
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, NULL);
  (void)arg;
  usleep(300000);
  signal(SIGTERM, print_h);
  if (write(1, "installed\n", 10) < 0) _exit(8);
  return NULL;
}

static int view(void) {
  struct sigaction now;
  sigaction(SIGTERM, NULL, &now);
  printf("SIGTERM: sigaction shows %s, flags %d\n",
         (now.sa_flags & SA_SIGINFO) ? "a handler" : name_of(now.sa_handler), now.sa_flags);
  void (*was)(int) = signal(SIGINT, SIG_DFL);
  printf("SIGINT: signal(SIG_DFL) returns %s\n", name_of(was));
  was = signal(SIGINT, on_int);
  printf("SIGINT: signal(handler) returns %s\n", name_of(was));
  was = signal(SIGINT, SIG_DFL);
  printf("SIGINT: signal(SIG_DFL) returns %s\n", name_of(was));
  sigaction(SIGINT, NULL, &now);
  printf("SIGINT: sigaction shows %s\n",
         (now.sa_flags & SA_SIGINFO) ? "a handler" : name_of(now.sa_handler));
  fflush(stdout);
  raise(SIGINT);
  printf("not reached\n");
  return 1;
}

static void show_action(const char* when) {
  struct sigaction now;
  sigaction(SIGTERM, NULL, &now);
  printf("%s: %s, flags %#x, SIGINT %s\n", when,
         now.sa_handler == cleanup_then_again ? "the one-shot handler" : name_of(now.sa_handler),
         (unsigned)now.sa_flags, sigismember(&now.sa_mask, SIGINT) ? "masked" : "not masked");
}

static int oneshot_view(void) {
  set_one_shot(SIGTERM, cleanup_then_again);
  show_action("set");
  void (*was)(int) = signal(SIGTERM, on_int);
  printf("signal(handler) returns %s\n",
         was == cleanup_then_again ? "the one-shot handler" : name_of(was));
  was = sysv_signal(SIGTERM, cleanup_then_again);
  printf("sysv_signal returns %s\n", was == on_int ? "the other handler" : name_of(was));
  show_action("sysv_signal");
  was = signal(SIGTERM, SIG_DFL);
  printf("signal(SIG_DFL) returns %s\n",
         was == cleanup_then_again ? "the one-shot handler" : name_of(was));
  set_one_shot(SIGTERM, cleanup_then_again);
  fflush(stdout);
  raise(SIGTERM);
  printf("not reached\n");
  return 1;
}

static void other(int sig) {
  (void)sig;
  say("other\n");
}

static int g_other_one_shot;

static void set_other_for_int(int sig) {
  (void)sig;
  say("usr1\n");
  if (g_other_one_shot)
    set_one_shot(SIGINT, other);
  else
    signal(SIGINT, other);
}

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // sigset and sigrelse: System V's

static int oneshot_hold(void) {
  set_one_shot(SIGTERM, once);
  sigset(SIGTERM, SIG_HOLD);
  raise(SIGTERM);
  say("held\n");
  sigrelse(SIGTERM);
  say("after release\n");
  return 0;
}

static int oneshot_nested(void) {
  struct sigaction a;  // nothing masked while it runs: the kernel delivers SIGUSR1 over it
  memset(&a, 0, sizeof a);
  a.sa_handler = once;
  sigemptyset(&a.sa_mask);
  a.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &a, NULL);
  signal(SIGUSR1, set_other_for_int);
  sigset_t both;
  sigemptyset(&both);
  sigaddset(&both, SIGINT);
  sigaddset(&both, SIGUSR1);
  sigprocmask(SIG_BLOCK, &both, NULL);
  raise(SIGINT);
  raise(SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &both, NULL);
  raise(SIGINT);
  say("main goes on\n");
  return 0;
}

static int default_flags(void) {
  const int sigs[] = {SIGUSR2, SIGQUIT};
  for (int i = 0; i < 2; ++i) {
    struct sigaction a, now;
    memset(&a, 0, sizeof a);
    a.sa_handler = SIG_DFL;
    a.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&a.sa_mask);
    sigaddset(&a.sa_mask, SIGINT);
    sigaction(sigs[i], &a, NULL);
    sigaction(sigs[i], NULL, &now);
    printf("%d: %s, flags %#x, SIGINT %s\n", sigs[i], name_of(now.sa_handler),
           (unsigned)now.sa_flags, sigismember(&now.sa_mask, SIGINT) ? "masked" : "not masked");
  }
  return 0;
}

static int oneshot_altstack(size_t size) {
  if (size == 0) size = (size_t)sysconf(_SC_MINSIGSTKSZ);
  say("");  // the PLT entry of write bound now, not on the small stack
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char* at = mmap(NULL, page + (size + page - 1) / page * page, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED || mprotect(at, page, PROT_NONE) != 0) return 4;
  stack_t stack = {.ss_sp = at + page, .ss_size = size, .ss_flags = 0};
  if (sigaltstack(&stack, NULL) != 0) return 4;
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = once;
  sigemptyset(&a.sa_mask);
  a.sa_flags = SA_RESETHAND | SA_ONSTACK;
  sigaction(SIGTERM, &a, NULL);
  raise(SIGTERM);
  say("ok\n");
  return 0;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "wait";
  if (!strcmp(mode, "oneshot_altstack") && argc > 2)
    return oneshot_altstack(strtoul(argv[2], 0, 0));
  const int sites = argc > 2 ? atoi(argv[2]) : 0;
  for (int d = 0; d < sites; ++d) hl_leak_at_depth(d, 10 + d);
  for (int i = 0; i < 3; ++i) lose();
  keep_global();
  void* volatile local = keep_local();
  if (!strcmp(mode, "spared")) {
    const int sent[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGABRT, SIGSEGV};
    for (unsigned i = 0; i < sizeof sent / sizeof sent[0]; ++i) kill(getpid(), sent[i]);
    say("spared\n");
    const pid_t parent = getpid();
    const pid_t child = fork();
    if (child == 0) {
      usleep(100 * 1000);
      kill(parent, SIGTERM);
      hl_sink(malloc(123));  // its own, lost when the signal ends it
      raise(SIGTERM);
      _exit(0);
    }
    struct timespec half = {0, 500 * 1000 * 1000};
    if (nanosleep(&half, NULL) == 0) say("slept\n");
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status))
      say(WTERMSIG(status) == SIGTERM ? "child: signal 15\n" : "child: other\n");
    return 7;
  }
  if (!strcmp(mode, "view")) return view();
  if (!strcmp(mode, "oneshot_view")) return oneshot_view();
  if (!strcmp(mode, "oneshot_hold")) return oneshot_hold();
  if (!strcmp(mode, "default_flags")) return default_flags();
  if (!strcmp(mode, "oneshot_nested")) return oneshot_nested();
  if (!strcmp(mode, "oneshot_nested2")) {
    g_other_one_shot = 1;
    return oneshot_nested();
  }
  if (!strcmp(mode, "own")) signal(SIGTERM, on_term);
  for (size_t i = 0; i < sizeof kStopSignals / sizeof *kStopSignals; ++i) {
    if (!strcmp(mode, "oneshot")) set_one_shot(kStopSignals[i], cleanup_then_again);
    if (!strcmp(mode, "once")) set_one_shot(kStopSignals[i], once);
    if (!strcmp(mode, "sysv")) sysv_signal(kStopSignals[i], cleanup_then_again);
  }
  if (!strcmp(mode, "worker")) {
    static int tid;
    pthread_t t;
    if (pthread_create(&t, NULL, wait_for_ever, (void*)&tid) != 0) return 1;
    while (__atomic_load_n(&tid, __ATOMIC_ACQUIRE) == 0) usleep(1000);
    printf("ready %d\n", tid);
    fflush(stdout);
    for (;;) pause();
  }
  if (!strcmp(mode, "dying")) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    ready();
    for (;;) {
      pthread_t t;
      if (pthread_create(&t, NULL, live_briefly, NULL) != 0) return 1;
      pthread_join(t, NULL);
    }
  }
  if (!strcmp(mode, "late")) {
    pthread_t t;
    if (pthread_create(&t, NULL, install_late, NULL) != 0) return 1;
  }
  if (!strcmp(mode, "atexit")) {
    ready();
    for (;;) atexit(nothing);
  }
  if (!strcmp(mode, "churn")) {
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0) return 1;
    ready();
    churn(NULL);
  }
  ready();
  for (;;) pause();
  return local != NULL;
}
