// What one read of /proc/self/maps costs this process: the kernel makes the text anew at each
// read. Run under LD_PRELOAD to see a tracked process's (docs/internals.md, "The maps, read once
// at exit"):
//   HEAPLEDGER_OPTIONS=log=none LD_PRELOAD=build/lib/libheapledger.so (on one line with:)
//   build/tests/bench/maps_read_cost 5
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  const int reads = argc > 1 ? atoi(argv[1]) : 5;
  static char buf[1 << 16];
  for (int r = 0; r < reads; ++r) {
    const double start = now_us();
    const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return perror("/proc/self/maps"), 1;
    long total = 0;
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) total += n;
    close(fd);
    printf("%ld bytes in %.1f us\n", total, now_us() - start);
  }
  return 0;
}
