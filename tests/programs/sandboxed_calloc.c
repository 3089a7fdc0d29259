// A program that sandboxes itself: every system call allowed but mincore (which glibc's malloc
// never makes), which kills the process. Then a large buffer, freed, and a calloc of its size,
// three times: the calloc takes the freed mapping, which must be cleared without asking.
//   sandboxed_calloc
// With "mlockall": capget is the call that kills instead (heapledger's mlockall asked it, and
// read /proc, where the kernel's would not), then mlockall(MCL_CURRENT | MCL_ONFAULT).
//   sandboxed_calloc mlockall
// With "create": refuses to create files (man-db's sandbox), then leaks 100 bytes from
// leak_site(): the report cannot be written to a new file.
//   sandboxed_calloc create
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_seccomp.h"

__attribute__((noinline)) static void leak_site(void) {
  void* volatile p = malloc(100);  // HL_LEAK_SITE leak_site
  (void)p;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "create") == 0) {
    if (hl_refuse_creating_files() != 0) {
      perror("seccomp");
      return 1;
    }
    leak_site();
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "mlockall") == 0) {
    if (hl_kill_on_syscall(__NR_capget) != 0) {
      perror("seccomp");
      return 1;
    }
    printf("mlockall: %d\n", mlockall(MCL_CURRENT | MCL_ONFAULT));
    return 0;
  }
  if (hl_kill_on_syscall(__NR_mincore) != 0) {
    perror("seccomp");
    return 1;
  }
  for (int i = 0; i < 3; ++i) {
    char* p = malloc(1 << 20);
    memset(p, 1, 4096);
    free(p);
    char* z = calloc(1, 1 << 20);
    printf("round %d: %d\n", i, z[0]);
    free(z);
  }
  return 0;
}
