// N children (default 8) that each leak one block from each of 40 call sites, then exit at the
// same moment (the parent closes the pipe they all wait on), so that their exit reports, each
// tens of KB and written in many pieces, go to the stream they share (stderr, or stdout with
// json=/dev/stdout) at once. Each report must come out whole, not interleaved with another's.
// DEPTH (default 0) calls the sites through that many more frames: longer reports.
//   fork_reports [N [DEPTH]]
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")
// clang-format off
#define SITE(n) NOINLINE void site_##n(void) { KEEP(malloc(100 + n)); }
#define SITES10(a) SITE(a##0) SITE(a##1) SITE(a##2) SITE(a##3) SITE(a##4) \
                   SITE(a##5) SITE(a##6) SITE(a##7) SITE(a##8) SITE(a##9)
SITES10(1) SITES10(2) SITES10(3) SITES10(4)
#define CALL10(a) site_##a##0(); site_##a##1(); site_##a##2(); site_##a##3(); site_##a##4(); \
                  site_##a##5(); site_##a##6(); site_##a##7(); site_##a##8(); site_##a##9();

NOINLINE void all_sites(int depth) {
  if (depth > 0) {
    all_sites(depth - 1);
    KEEP(&depth);  // not a tail call: a frame each
    return;
  }
  CALL10(1) CALL10(2) CALL10(3) CALL10(4)
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 8;
  const int depth = argc > 2 ? atoi(argv[2]) : 0;
  int go[2];
  if (pipe(go) != 0) return 1;
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      close(go[1]);
      all_sites(depth);
      char c;
      while (read(go[0], &c, 1) > 0) {}
      exit(0);
    }
  }
  close(go[0]);
  usleep(100 * 1000);  // the children have allocated by now (if not, their reports are shorter)
  close(go[1]);
  while (wait(NULL) > 0) {}
  return 0;
}
// clang-format on
