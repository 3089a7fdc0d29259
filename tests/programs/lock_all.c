// mlockall with the flags named on the command line (current, future, onfault), between blocks
// allocated before and after it, then whether the memory locked is what the program holds: at
// least its 8 MiB block, its small blocks allocated after the call if future was asked, and not
// heapledger's tables (a 215 GiB sparse table the kernel's own
// mlockall locked, and without onfault faulted in whole: the OOM killer). Needs CAP_IPC_LOCK or
// no RLIMIT_MEMLOCK to succeed: the e2e test runs it as root.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static long locked_kb(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmLck:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

// 25 MiB of small blocks: whether they were locked as they were allocated.
static const char* small_blocks_locked(void) {
  const long before = locked_kb();
  enum { kSmall = 100000 };
  static char* small[kSmall];
  for (int i = 0; i < kSmall; ++i) {
    small[i] = malloc(256);
    memset(small[i], 3, 256);
  }
  const char* locked = locked_kb() - before >= 20 * 1024 ? "yes" : "no";
  for (int i = 0; i < kSmall; ++i) free(small[i]);
  return locked;
}

int main(int argc, char** argv) {
  int flags = 0, fork_child = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "current") == 0) flags |= MCL_CURRENT;
    if (strcmp(argv[i], "future") == 0) flags |= MCL_FUTURE;
    if (strcmp(argv[i], "onfault") == 0) flags |= MCL_ONFAULT;
    if (strcmp(argv[i], "fork") == 0) fork_child = 1;
  }
  char* before = malloc(8 << 20);
  memset(before, 1, 8 << 20);
  const int r = mlockall(flags);
  printf("mlockall: %d %s\n", r, r != 0 ? strerror(errno) : "");
  char* after = malloc(4 << 20);
  memset(after, 2, 4 << 20);
  for (int i = 0; i < 10000; ++i) free(malloc((size_t)(i % 3000 + 1)));
  // Small blocks after the call: locked with MCL_FUTURE (glibc's heap grows into locked memory;
  // the pools' memory, made usable inside an older reservation, was not), not without it; nor
  // in a child forked since (the kernel gives it none of its parent's locks).
  if (fork_child) {
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
      printf("child's small blocks locked: %s\n", small_blocks_locked());
      fflush(stdout);
      _exit(0);
    }
    waitpid(child, NULL, 0);
  }
  printf("small blocks after it locked: %s\n", small_blocks_locked());
  const long kb = locked_kb();
  printf("locked: at least 8 MiB %s, under 1 GiB %s\n", kb >= 8 * 1024 ? "yes" : "no",
         kb < 1024 * 1024 ? "yes" : "no");
  printf("contents %d %d\n", before[12345], after[54321]);
  fprintf(stderr, "VmLck: %ld kB\n", kb);
  free(before);
  free(after);
  munlockall();
  return 0;
}
