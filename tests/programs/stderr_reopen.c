// Leaks 77 bytes, then closes stderr and opens the file argv[1], which becomes fd 2, and writes
// "DATA" to it. The exit report must not end up in that file.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) void leak_77(void) { hl_sink(malloc(77)); }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  leak_77();
  close(2);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd != 2) return 3;
  return write(fd, "DATA\n", 5) == 5 ? 0 : 4;
}
