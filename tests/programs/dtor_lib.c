// A library (libdtor_lib.so, linked by dtor_order) whose destructor lets go of what lib_setup
// (called from main) allocated: lib_kept_site's 4,444-byte block loses its only pointer (definitely
// lost, as memcheck says; heapledger's report ran before this destructor and called it still
// reachable), and with DTOR_DOUBLE_FREE set, lib_free_twice frees a 48-byte block twice (never
// reported). Without heapledger glibc aborts on that double free: the test runs it tracked only.
// With DTOR_EXIT set, the destructor ends the process with _exit(5) when it is done; with
// DTOR_ABORT, abort(); with DTOR_CRASH, a write through a null pointer; with DTOR_SLOW, it takes
// 300 ms (dtor_order's WATCHDOG thread ends the process meanwhile); with DTOR_FORK, it forks a
// child that allocates, frees and ends with _exit(0), and waits for it; with DTOR_VFORK, a vfork
// child fails to exec and ends with _exit(127); with DTOR_RAISE, raise(SIGSEGV); with
// DTOR_QUICK, quick_exit(6).
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void* volatile g_lib_kept;
volatile int g_lib_ended;  // set when the destructor is done (dtor_order's LATE_ABORT)
void* volatile g_lib_twice;

__attribute__((noinline)) void* lib_kept_site(void) { return malloc(4444); }
__attribute__((noinline)) void lib_free_twice(void* p) { free(p); }

void lib_setup(void) {
  g_lib_kept = lib_kept_site();
  g_lib_twice = malloc(48);
}

__attribute__((destructor)) static void lib_end(void) {
  g_lib_kept = NULL;
  if (getenv("DTOR_DOUBLE_FREE")) {
    free(g_lib_twice);
    lib_free_twice(g_lib_twice);
  } else {
    free(g_lib_twice);
  }
  if (getenv("DTOR_EXIT")) _exit(5);
  if (getenv("DTOR_ABORT")) abort();
  if (getenv("DTOR_CRASH")) *(volatile int*)g_lib_kept = 1; /* null by now */
  if (getenv("DTOR_SLOW")) usleep(300 * 1000);
  if (getenv("DTOR_RAISE")) raise(SIGSEGV);
  if (getenv("DTOR_QUICK")) quick_exit(6);
  if (getenv("DTOR_VFORK")) {
    pid_t child = vfork();
    if (child == 0) {
      execlp("no-such-program-here", "no-such-program-here", (char*)NULL);
      _exit(127);
    }
    if (child > 0) waitpid(child, NULL, 0);
  }
  g_lib_ended = 1;
  if (getenv("DTOR_FORK")) {
    pid_t child = fork();
    if (child == 0) {
      free(malloc(64));
      _exit(0);
    }
    if (child > 0) waitpid(child, NULL, 0);
  }
}
