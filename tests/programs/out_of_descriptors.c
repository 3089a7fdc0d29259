// A program that uses up its file descriptors and exits normally: it lowers its soft limit to
// 64 (the hard limit stays), opens /dev/null until that fails, and leaks one 321-byte block
// (leak_site) and keeps one of 123 bytes in a global (kept_site: still reachable). Plain, it
// prints "out of descriptors" and exits 0.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

__attribute__((noinline)) void* leak_site(void) {
  void* p = malloc(321);
  if (p) memset(p, 1, 321);
  return p;
}

void* g_kept;

__attribute__((noinline)) void* kept_site(void) { return malloc(123); }

int main(void) {
  g_kept = kept_site();
  void* volatile lost = leak_site();
  lost = NULL;
  (void)lost;
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 2;
  if (r.rlim_max <= 64) return 2;  // nothing to show here: no room above the soft limit
  r.rlim_cur = 64;
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) return 2;
  while (open("/dev/null", O_RDONLY) >= 0) {
  }
  printf("out of descriptors\n");
  return 0;
}
