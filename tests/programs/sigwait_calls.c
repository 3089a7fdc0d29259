// What sigwait, sigwaitinfo and sigtimedwait answer, for a check that heapledger's interposed ones
// (shim/sigwait_api.cc) answer as the C library's: the signal a thread raised and blocked, its
// siginfo (code and value from sigqueue), a timeout with nothing pending (EAGAIN, after the time
// asked), and an interrupted sigtimedwait (EINTR, which sigwait waits
// through). Prints one line per call; run plain and preloaded, the output must be the same.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void on_alarm(int sig) { (void)sig; }

static pthread_t g_main;

static void* interrupt_later(void* arg) {
  (void)arg;
  usleep(50000);
  pthread_kill(g_main, SIGALRM);
  usleep(50000);
  pthread_kill(g_main, SIGUSR2);
  return NULL;
}

int main(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  raise(SIGUSR1);
  int sig = 0;
  const int rc = sigwait(&set, &sig);
  printf("sigwait: %d, signal %d\n", rc, sig);

  union sigval value = {.sival_int = 4242};
  sigqueue(getpid(), SIGUSR2, value);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int got = sigwaitinfo(&set, &info);
  printf("sigwaitinfo: %d, signo %d, code %s, value %d\n", got, info.si_signo,
         info.si_code == SI_QUEUE ? "SI_QUEUE" : "other", info.si_value.sival_int);

  const struct timespec fifty_ms = {0, 50 * 1000 * 1000};
  double start = now_ms();
  errno = 0;
  got = sigtimedwait(&set, NULL, &fifty_ms);
  const int timed_out_errno = errno;
  printf("sigtimedwait, nothing pending: %d, %s, waited at least 50 ms: %s\n", got,
         timed_out_errno == EAGAIN ? "EAGAIN" : strerror(timed_out_errno),
         now_ms() - start >= 49.5 ? "yes" : "no");

  raise(SIGUSR1);
  got = sigtimedwait(&set, NULL, &fifty_ms);
  printf("sigtimedwait, one pending, no info: %d\n", got);

  // A handled signal that is not in the set ends a sigtimedwait (EINTR); sigwait waits through
  // it for the one asked.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  g_main = pthread_self();
  pthread_t t;
  pthread_create(&t, NULL, interrupt_later, NULL);
  const struct timespec two_s = {2, 0};
  errno = 0;
  got = sigtimedwait(&set, NULL, &two_s);
  printf("sigtimedwait, interrupted: %d, %s\n", got, errno == EINTR ? "EINTR" : strerror(errno));
  sig = 0;
  const int rc2 = sigwait(&set, &sig);
  printf("sigwait after an interruption: %d, signal %d\n", rc2, sig);
  pthread_join(t, NULL);
  return 0;
}
