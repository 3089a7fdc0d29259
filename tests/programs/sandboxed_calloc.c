// A program that sandboxes itself: every system call allowed but mincore (which glibc's malloc
// never makes), which kills the process. Then a large buffer, freed, and a calloc of its size,
// three times: the calloc takes the freed mapping, which must be cleared without asking.
//   sandboxed_calloc
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mincore, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
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
