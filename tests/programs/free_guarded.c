// Large blocks freed after the program changed their pages: fine under glibc, where a block this
// large is its own mapping and free() unmaps it (with the mmap threshold fixed: else glibc serves
// the second block from its heap after the first is freed, and fails part 2 itself); heapledger
// keeps freed mappings for reuse, so it must undo the change before the next block gets them.
// 1. A page-aligned block with a guard page (PROT_NONE) in it, then an unrelated allocation of the
//    same size written all over.
// 2. A block advised out of a fork's child (MADV_DONTFORK), one wiped in it (MADV_WIPEONFORK):
//    the next block of that size must reach a child with its contents.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kSize = 1 << 20 };

// Forks; the child checks that buf holds the pattern. True if it did.
static int child_sees(const char* buf) {
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    for (size_t i = 0; i < kSize; i += 4096)
      if (buf[i] != (char)(i >> 12)) _exit(3);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int advised_then_reused(int advice) {
  char* old = malloc(kSize);
  if (!old || madvise((void*)((unsigned long)(old + 4095) & ~4095ul), kSize / 2, advice) != 0)
    return 0;
  free(old);
  char* buf = malloc(kSize);
  if (!buf) return 0;
  for (size_t i = 0; i < kSize; i += 4096) buf[i] = (char)(i >> 12);
  int ok = child_sees(buf);
  free(buf);
  return ok;
}

int main(void) {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);  // glibc: every block here its own mapping, always
  char* stack = memalign(4096, kSize);
  if (!stack || mprotect(stack, 4096, PROT_NONE) != 0) return 1;
  stack[8192] = 1;
  free(stack);
  char* buf = malloc(kSize);
  if (!buf) return 1;
  memset(buf, 0, kSize);
  free(buf);
  if (!advised_then_reused(MADV_DONTFORK)) return 2;
  if (!advised_then_reused(MADV_WIPEONFORK)) return 3;
  puts("ok");
  return 0;
}
