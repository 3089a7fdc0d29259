// A thread that has ended but is not released when the process exits: another process traces
// it (a child here; a debugger attached to one thread would do the same), and a traced thread
// stays a zombie until its tracer reaps it. ptrace refuses to seize such a thread (EPERM). The
// scan took that, in its first listing, for ptrace not being allowed at all, and stopped the
// threads with its signal instead, ending their sleeps early ("sleep ended early"); in a later
// listing it counted the thread as not stopped. A sleeping thread and main's leak of 777 bytes.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_sink.h"

static volatile pid_t g_ender;
static volatile int g_go;

static void* ender(void* arg) {
  g_ender = (pid_t)syscall(SYS_gettid);
  while (!g_go) usleep(1000);
  return arg;
}

static void* sleeper(void* arg) {
  struct timespec left = {0, 500 * 1000 * 1000};
  if (nanosleep(&left, &left) != 0) puts("sleep ended early");
  return arg;
}

// The state letter of thread tid of this process, '?' if it cannot be read.
static char state_of(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE* f = fopen(path, "r");
  if (!f) return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' ? paren[2] : '?';
}

__attribute__((noinline)) static void leaked_by_main(void) {
  void* p = malloc(777);
  memset(p, 7, 777);
  hl_sink(p);
}

int main(void) {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // Yama's restricted policy: let the child
  pthread_t t, s;
  if (pthread_create(&t, NULL, ender, NULL) != 0) return 1;
  pthread_detach(t);
  while (!g_ender) usleep(1000);
  int ready[2];
  if (pipe(ready) != 0) return 1;
  fflush(stdout);
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {  // the tracer: seizes the thread, then waits to die with main
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    const char answer = ptrace(PTRACE_SEIZE, g_ender, 0, 0) == 0 ? 'y' : 'n';
    if (write(ready[1], &answer, 1) != 1) _exit(1);
    close(1);
    close(2);
    for (;;) pause();
  }
  char answer = 'n';
  if (read(ready[0], &answer, 1) != 1 || answer != 'y') {
    puts("cannot trace a thread here");
    return 0;
  }
  g_go = 1;
  for (int i = 0; i < 2000 && state_of(g_ender) != 'Z'; ++i) usleep(1000);
  if (state_of(g_ender) != 'Z') {
    puts("the traced thread did not end");
    return 1;
  }
  if (pthread_create(&s, NULL, sleeper, NULL) != 0) return 1;
  usleep(20000);
  leaked_by_main();
  puts("main returns");
  return 0;
}
