// A thread with the leak scan's signal blocked when the process exits. Under a seccomp filter the
// scan stops threads with that signal (see hl_signal_stop.h), which such a thread never takes:
// it used to be waited for the whole timeout, then counted among the threads that could not be
// stopped ("results may hide leaks"), its whole stack a root. One asleep in a system call runs
// nothing until the kernel wakes it: the scan holds it so, counts its stack from its stack
// pointer, and checks at the end that it has not run meanwhile.
//   stop_signal_blocked MODE [seccomp]
// MODE:
//   exit_mask  the thread takes the mask glibc's thread exit sets (every signal blocked but
//              SIGSETXID, 33; by rt_sigprocmask itself, as glibc's sigprocmask keeps 32 and 33
//              open), then sleeps on a futex no one wakes: a detached thread in glibc's exit
//              waits so for the stack cache's lock when a thread the scan parked holds it.
//   asleep     a server's signal thread: every signal blocked (sigfillset, pthread_sigmask),
//              asleep in pause() (the system call itself, so that its frame is the innermost),
//              with the only copy of a pointer to a 700-byte block 64 bytes below its stack
//              pointer, where a leaf function left it: definitely lost (nothing below a thread
//              blocked in a system call is in use; counted whole, the stack made it reachable).
//   cleanup    every signal blocked, the thread is cancelled, and its cleanup handler (the
//              program's code) runs on through the exit: it cannot be held, and the report says
//              it could not be stopped (its mask is then glibc's exit mask too, so that mask
//              alone says nothing of whether a thread still runs the program's code).
//   cancel_tsd the same, but what runs on is the program's key destructor, after heapledger's
//              exit destructor (its key came first), holding the only pointer to a 5,555-byte
//              block on its stack: with glibc's exit mask and through heapledger's destructor,
//              it was counted as ended, its stack left out, the block "definitely lost" with no
//              warning (a review's); still reachable, and the thread not stopped, now.
//   sigwait    a server's signal thread as most are written: every signal blocked, asleep in
//              sigwait() on every signal. The kernel unblocks the set it waits on meanwhile, so
//              /proc showed the scan's signal open, the thread took it as the answer to its wait
//              and said so ("sigwait got 61" on stdout, a review's), and was not held: held as it
//              sleeps now, never sent the signal.
//   between    a signal thread between two waits when the scan begins: every signal blocked, it
//              works 20 ms, then waits in sigtimedwait() on every signal (up to 2 s). It was sent
//              the signal as it worked, and its wait took the request as its answer
//              ("sigtimedwait got 61" on stdout); not sent the signal now while it has it
//              blocked, it is held once it waits.
//   late_sigwait, late_sigtimedwait  every signal blocked, the thread works 100 ms, then waits
//              on every signal in sigwait() or sigtimedwait() (up to 2 s): past 25 ms with the
//              signal blocked it is sent the request, which its wait took as its answer
//              ("sigwait got 61"); the interposed wait takes it as the signal's handler would
//              (the thread is stopped there), drops it, and waits on.
//   sigpoll    every signal blocked, the thread works, polling sigtimedwait() with a zero
//              timeout every millisecond: stopped in the poll that takes the request.
//   signalfd_busy  the same, polling a non-blocking signalfd for every signal: the scan does not
//              send a thread its signal late where a signalfd reads it (it read "signalfd got
//              61", a review's): not stopped, and said so.
//   signalfd   every signal blocked, asleep reading a signalfd for all of them: it read the
//              scan's request ("signalfd got 61"); held as it sleeps now.
//   alarm_jump the late_sigtimedwait thread blocking only the real-time signals, SIGALRM left
//              open with a handler that leaves the wait by siglongjmp (a 10 ms timer), and a
//              second thread, every signal blocked, that runs on and is never stopped (the scan
//              waits its timeout out): parked in the interposed wait with the program's mask,
//              the thread ran the handler there, left the park by its jump, and the exit waited
//              for it for ever (a review's). Every signal is blocked while it is parked now.
//   mostly_blocked  the thread runs, every signal blocked for 5 ms at a time, open for 50 us
//              in between: it takes the request at its next unblock (a first version that
//              sent it only once /proc showed it open seldom saw it so, a review's: not
//              stopped).
//   ended      what glibc's end of a thread looks like: the thread returns, heapledger's exit
//              destructor runs, then the program's key destructor takes glibc's exit mask and
//              sleeps on a futex. By signal it counts as ended (not among the threads).
// In every mode but cleanup, cancel_tsd and ended the thread holds the one
// pointer to a 2,222-byte block in its frame (still reachable); main leaks one block of 777 bytes
// (definite) in every mode.
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hl_signal_stop.h"
#include "hl_sink.h"

static atomic_int g_ready;
static int g_never;  // a futex word no one wakes
void* volatile g_a;
void* volatile g_b;

__attribute__((noinline)) static void* held_by_thread(void) { return malloc(2222); }

__attribute__((noinline)) void* lost_site(void) {
  void* p = malloc(700);
  if (p) memset(p, 7, 700);
  return p;
}

static pthread_key_t g_key;

static void block_every_signal(void) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
}

// Blocks what glibc's end of a thread blocks, and sleeps for good.
static void end_of_thread_mask_and_sleep(void) {
  const uint64_t mask =
      ~((UINT64_C(1) << (SIGKILL - 1)) | (UINT64_C(1) << (SIGSTOP - 1)) | (UINT64_C(1) << 32));
  if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &mask, NULL, sizeof mask) != 0) abort();
  atomic_store(&g_ready, 1);
  for (;;) syscall(SYS_futex, &g_never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void* exit_mask(void* arg) {
  (void)arg;
  void* volatile held = held_by_thread();
  end_of_thread_mask_and_sleep();
  return (void*)held;
}

static void sleep_at_its_end(void* value) {
  (void)value;
  end_of_thread_mask_and_sleep();
}

static void* ended(void* arg) {
  (void)arg;
  free(malloc(16));  // heapledger's exit destructor is set for this thread
  pthread_setspecific(g_key, &g_key);
  return NULL;
}

__attribute__((noinline)) static void* held_by_destructor(void) { return malloc(5555); }

static void spin_holding(void* value) {
  (void)value;
  void* volatile mine = g_a;  // the only copy, on this running thread's stack
  g_a = NULL;
  atomic_store(&g_ready, 1);
  for (;;) __asm__ volatile("" : : "r"(mine) : "memory");
}

static void* cancel_tsd(void* arg) {
  (void)arg;
  block_every_signal();
  g_a = held_by_destructor();
  pthread_setspecific(g_key, &g_key);
  for (;;) sleep(100);
  return NULL;
}

static void* asleep(void* arg) {
  (void)arg;
  block_every_signal();
  void* volatile held = held_by_thread();
  void* p = lost_site();
  hl_leave_below(p);
  p = NULL;
  atomic_store(&g_ready, 1);
  for (;;) {  // no register keeps p (the argument registers are zeroed)
    long nr = SYS_pause;
    __asm__ volatile("syscall"
                     : "+a"(nr)
                     : "D"(0L), "S"(0L), "d"(0L)
                     : "rcx", "r11", "r8", "r9", "r10", "memory");
  }
  return (void*)held;
}

// What a wait of the thread answered, if a signal: the program sends none, so any is heapledger's.
static void say_got(const char* call, int sig) {
  if (sig <= 0) return;
  printf("%s got %d\n", call, sig);
  fflush(stdout);
}

static void* waits_for_signals(void* arg) {
  (void)arg;
  block_every_signal();
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  atomic_store(&g_ready, 1);
  for (;;) {
    int sig = 0;
    if (sigwait(&all, &sig) == 0) say_got("sigwait", sig);
  }
  return (void*)held;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void spin_ms(double ms) {
  const double until = now_ms() + ms;
  while (now_ms() < until) {
  }
}

static void* between_waits(void* arg) {
  (void)arg;
  block_every_signal();
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    atomic_store(&g_ready, 1);
    spin_ms(20);
    const struct timespec two_s = {2, 0};
    siginfo_t info;
    const int sig = sigtimedwait(&all, &info, &two_s);
    say_got("sigtimedwait", sig);
  }
  return (void*)held;
}

static void* late_wait(int timed) {
  block_every_signal();
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  atomic_store(&g_ready, 1);
  spin_ms(100);
  for (;;) {
    int sig = 0;
    if (timed) {
      const struct timespec two_s = {2, 0};
      siginfo_t info;
      sig = sigtimedwait(&all, &info, &two_s);
    } else if (sigwait(&all, &sig) != 0) {
      sig = -1;
    }
    say_got(timed ? "sigtimedwait" : "sigwait", sig);
  }
  return (void*)held;
}

static void* late_sigwait(void* arg) {
  (void)arg;
  return late_wait(0);
}

static void* late_sigtimedwait(void* arg) {
  (void)arg;
  return late_wait(1);
}

static void* sigpoll(void* arg) {
  (void)arg;
  block_every_signal();
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  atomic_store(&g_ready, 1);
  for (;;) {
    spin_ms(1);
    const struct timespec zero = {0, 0};
    const int sig = sigtimedwait(&all, NULL, &zero);
    say_got("sigtimedwait", sig);
  }
  return (void*)held;
}

static sigjmp_buf g_jump_back;
static volatile sig_atomic_t g_jump_armed;

static void on_alarm(int sig) {
  (void)sig;
  if (g_jump_armed) {
    g_jump_armed = 0;
    siglongjmp(g_jump_back, 1);
  }
}

static void* waits_with_alarms(void* arg) {
  (void)arg;
  sigset_t realtime;
  sigemptyset(&realtime);
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) sigaddset(&realtime, sig);
  pthread_sigmask(SIG_BLOCK, &realtime, NULL);
  void* volatile held = held_by_thread();
  atomic_store(&g_ready, 1);
  spin_ms(100);
  for (;;) {
    if (sigsetjmp(g_jump_back, 1) != 0) continue;
    g_jump_armed = 1;
    const struct timespec two_s = {2, 0};
    siginfo_t info;
    const int sig = sigtimedwait(&realtime, &info, &two_s);
    g_jump_armed = 0;
    say_got("sigtimedwait", sig);
  }
  return (void*)held;
}

static void* runs_on(void* arg) {
  (void)arg;
  block_every_signal();
  for (;;) __asm__ volatile("" ::: "memory");
  return NULL;
}

static void* mostly_blocked(void* arg) {
  (void)arg;
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  atomic_store(&g_ready, 1);
  for (;;) {
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    spin_ms(5);
    pthread_sigmask(SIG_UNBLOCK, &all, NULL);
    spin_ms(0.05);
  }
  return (void*)held;
}

// Reads a signalfd for every signal: asleep in read() (signalfd), or polling it, non-blocking,
// every millisecond as it works (signalfd_busy).
static void* read_signalfd(int busy) {
  block_every_signal();
  void* volatile held = held_by_thread();
  sigset_t all;
  sigfillset(&all);
  const int fd = signalfd(-1, &all, SFD_CLOEXEC | (busy ? SFD_NONBLOCK : 0));
  if (fd < 0) abort();
  atomic_store(&g_ready, 1);
  for (;;) {
    if (busy) spin_ms(1);
    struct signalfd_siginfo info;
    if (read(fd, &info, sizeof info) == (ssize_t)sizeof info)
      say_got("signalfd", (int)info.ssi_signo);
  }
  return (void*)held;
}

static void* reads_signalfd(void* arg) {
  (void)arg;
  return read_signalfd(0);
}

static void* signalfd_busy(void* arg) {
  (void)arg;
  return read_signalfd(1);
}

static void cleanup_runs_on(void* p) {
  atomic_store(&g_ready, 1);
  for (;;) {
    g_b = p;
    g_a = NULL;
    g_a = p;
    g_b = NULL;
  }
}

static void* cancelled(void* arg) {
  (void)arg;
  block_every_signal();
  void* p = malloc(4242);
  g_a = p;
  pthread_cleanup_push(cleanup_runs_on, p);
  for (;;) sleep(100);
  pthread_cleanup_pop(0);
  return NULL;
}

__attribute__((noinline)) static void leaked_by_main(void) {
  void* p = malloc(777);
  memset(p, 7, 777);
  hl_sink(p);
}

int main(int argc, char** argv) {
  void* (*body)(void*) = NULL;
  if (argc > 1 && strcmp(argv[1], "exit_mask") == 0) body = exit_mask;
  if (argc > 1 && strcmp(argv[1], "asleep") == 0) body = asleep;
  if (argc > 1 && strcmp(argv[1], "cleanup") == 0) body = cancelled;
  if (argc > 1 && strcmp(argv[1], "cancel_tsd") == 0) body = cancel_tsd;
  if (argc > 1 && strcmp(argv[1], "ended") == 0) body = ended;
  if (argc > 1 && strcmp(argv[1], "sigwait") == 0) body = waits_for_signals;
  if (argc > 1 && strcmp(argv[1], "between") == 0) body = between_waits;
  if (argc > 1 && strcmp(argv[1], "signalfd") == 0) body = reads_signalfd;
  if (argc > 1 && strcmp(argv[1], "mostly_blocked") == 0) body = mostly_blocked;
  if (argc > 1 && strcmp(argv[1], "late_sigwait") == 0) body = late_sigwait;
  if (argc > 1 && strcmp(argv[1], "late_sigtimedwait") == 0) body = late_sigtimedwait;
  if (argc > 1 && strcmp(argv[1], "sigpoll") == 0) body = sigpoll;
  if (argc > 1 && strcmp(argv[1], "signalfd_busy") == 0) body = signalfd_busy;
  if (argc > 1 && strcmp(argv[1], "alarm_jump") == 0) body = waits_with_alarms;
  if (!body) {
    fputs(
        "usage: stop_signal_blocked exit_mask|asleep|cleanup|cancel_tsd|ended|sigwait|between|"
        "late_sigwait|late_sigtimedwait|sigpoll|signalfd|signalfd_busy|alarm_jump|mostly_blocked "
        "[seccomp|strict]\n",
        stderr);
    return 2;
  }
  free(malloc(16));  // heapledger's thread-exit key is created before the program's
  if (pthread_key_create(&g_key, body == ended ? sleep_at_its_end : spin_holding) != 0) return 1;
  if (argc > 2 && strcmp(argv[2], "seccomp") == 0 && hl_force_signal_stop() != 0) {
    perror("seccomp");
    return 1;
  }
  // A filter that kills for process_vm_readv/writev, and a question about a limit heapledger
  // answers (it read the program's struct with process_vm_readv, and so did the sigwait check:
  // the program was killed, a review's).
  if (argc > 2 && strcmp(argv[2], "strict") == 0) {
    struct rlimit limit;
    if (hl_force_signal_stop_strict() != 0 || getrlimit(RLIMIT_DATA, &limit) != 0) {
      perror("strict");
      return 1;
    }
  }
  if (body == waits_with_alarms) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
  }
  pthread_t t;
  if (pthread_create(&t, NULL, body, NULL) != 0) return 1;
  if (body == waits_with_alarms) {
    pthread_t other;
    if (pthread_create(&other, NULL, runs_on, NULL) != 0) return 1;
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, NULL);  // the timer's signal goes to the waiting thread
    // Every 10 ms: some 15 times while it is parked (the scan waits out the other thread), and
    // seldom in the microseconds between its wait's return and its blocking every signal.
    const struct itimerval every_10ms = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &every_10ms, NULL);
  }
  if (body == cancelled || body == cancel_tsd) {
    usleep(20000);
    pthread_cancel(t);
  }
  while (!atomic_load(&g_ready)) usleep(1000);
  usleep(10000);  // into its system call
  leaked_by_main();
  puts("main returns");
  return 0;
}
