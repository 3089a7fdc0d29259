// A program that sandboxes itself: every system call allowed but mincore (which glibc's malloc
// never makes), which kills the process. Then a large buffer, freed, and a calloc of its size,
// three times: the calloc takes the freed mapping, which must be cleared without asking.
//   sandboxed_calloc
// With "mlockall": capget is the call that kills instead (heapledger's mlockall asked it, and
// read /proc, where the kernel's would not), then mlockall(MCL_CURRENT | MCL_ONFAULT).
//   sandboxed_calloc mlockall
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hl_seccomp.h"

int main(int argc, char** argv) {
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
