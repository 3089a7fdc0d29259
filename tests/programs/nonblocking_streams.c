// Leaks SITES blocks of 10 + d bytes, each from its own call stack (recursion depth d), then
// makes its stdout and stderr non-blocking (O_NONBLOCK, as event loops leave them) and exits:
// its report is larger than a pipe holds.
//   nonblocking_streams [SITES]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) static void leak_at_depth(int depth, int size) {
  if (depth == 0) {
    hl_sink(malloc((size_t)size));
    return;
  }
  leak_at_depth(depth - 1, size);
  __asm__ volatile("");  // not a tail call: each depth is a frame of its own
}

int main(int argc, char** argv) {
  const int sites = argc > 1 ? atoi(argv[1]) : 200;
  for (int d = 0; d < sites; ++d) leak_at_depth(d, 10 + d);
  for (int fd = 1; fd <= 2; ++fd) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  printf("done\n");
  return 0;
}
