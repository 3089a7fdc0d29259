// A program that lowers its file size limit (as `ulimit -f`, sandboxes and judges do) and exits
// normally with status 3 after printing "ok". It leaks one 321-byte block (leak_site).
//   file_size_limit [BYTES]    the limit (default 4096: smaller than any JSON report)
// Plain, it exits 3. A report written past the limit must not end it with SIGXFSZ.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

__attribute__((noinline)) void* leak_site(void) {
  void* p = malloc(321);
  if (p) memset(p, 1, 321);
  return p;
}

int main(int argc, char** argv) {
  void* volatile lost = leak_site();
  lost = NULL;
  (void)lost;
  rlim_t limit = argc > 1 ? (rlim_t)strtoull(argv[1], NULL, 10) : 4096;
  struct rlimit r = {limit, limit};
  if (setrlimit(RLIMIT_FSIZE, &r) != 0) return 2;
  printf("ok\n");
  return 3;
}
