// Leaves the process in the way argv[1] names, after exit_leak() leaked 2 x 321 bytes:
//   return          return 0 from main
//   exit N          exit(N) from main
//   thread_exit     exit(5) from a second thread while main waits in pthread_join
//   quick_exit      quick_exit(6) (no atexit handlers, no ELF destructors)
// The report must be written in every case.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

__attribute__((noinline)) void exit_leak(void) {
  for (int i = 0; i < 2; ++i) {
    void* p = malloc(321);
    hl_sink(p);
  }
}

__attribute__((noinline)) static void* exiting_thread(void* arg) {
  (void)arg;
  exit_leak();
  printf("exit_paths: exit(5) from a thread\n");
  exit(5);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "return";
  if (strcmp(mode, "thread_exit") == 0) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, exiting_thread, NULL) != 0) return 2;
    pthread_join(thread, NULL);
    return 3;  // not reached
  }
  exit_leak();
  if (strcmp(mode, "return") == 0) {
    printf("exit_paths: return from main\n");
    return 0;
  }
  if (strcmp(mode, "exit") == 0) {
    int code = argc > 2 ? atoi(argv[2]) : 0;
    printf("exit_paths: exit(%d)\n", code);
    exit(code);
  }
  if (strcmp(mode, "quick_exit") == 0) {
    printf("exit_paths: quick_exit(6)\n");
    fflush(stdout);  // quick_exit does not flush stdio
    quick_exit(6);
  }
  fprintf(stderr, "exit_paths: unknown mode %s\n", mode);
  return 2;
}
