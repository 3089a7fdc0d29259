// A SIGTERM sent to the thread that writes the exit report, again and again while it does: a
// helper thread waits until heapledger's handler for it is in place (from the library's
// destructor on), then sends it to the main thread, which writes the report, every 200 us. The
// report must be whole and the process must then end by SIGTERM, as it would have without
// heapledger. Leaks `count` (argv[1]) blocks of 48 bytes from leak_block.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pid_t g_main_tid;
static void* volatile g_sink;

__attribute__((noinline)) void* leak_block(void) { return malloc(48); }

static void* signal_the_reporter(void* unused) {
  (void)unused;
  struct sigaction now;
  const struct timespec tick = {0, 200 * 1000};
  for (;;) {  // until heapledger catches SIGTERM: its destructor has run, the report is next
    sigaction(SIGTERM, NULL, &now);
    if ((now.sa_flags & SA_SIGINFO) || now.sa_handler != SIG_DFL) break;
    nanosleep(&tick, NULL);
  }
  for (;;) {
    syscall(SYS_tgkill, getpid(), g_main_tid, SIGTERM);
    nanosleep(&tick, NULL);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const int count = argc > 1 ? atoi(argv[1]) : 20000;
  void** blocks = malloc(sizeof(void*) * (size_t)count);
  for (int i = 0; i < count; ++i) blocks[i] = leak_block();
  for (int i = 0; i < count; ++i) g_sink = blocks[i];  // each block's only pointer is dropped below
  free(blocks);
  g_main_tid = (pid_t)syscall(SYS_gettid);
  pthread_t t;
  pthread_create(&t, NULL, signal_the_reporter, NULL);
  printf("exiting\n");
  fflush(stdout);
  return 0;
}
