// Writes to its own stdout and stderr, and to a file of its own, then leaks one block of 100
// bytes from leak_site() and exits with status 3.
//   own_streams LINES [FILE]
// LINES lines to stdout (buffered: a file or a pipe gets them when the program exits), one line to
// stderr, and "DATA\n" to FILE if given: started with stdout or stderr closed, FILE is opened in
// its place (descriptor 1 or 2), where no report may go.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) static void leak_site(void) {
  char* p = malloc(100);  // HL_LEAK_SITE leak_site
  if (p) strcpy(p, "leaked");
  hl_sink(p);
}

int main(int argc, char** argv) {
  const int lines = argc > 1 ? atoi(argv[1]) : 3;
  if (argc > 2) {
    const int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "DATA\n", 5) != 5) return 1;
  }
  for (int i = 0; i < lines; ++i) printf("line %d of the program's output\n", i);
  fprintf(stderr, "the program's line on stderr\n");
  leak_site();
  return 3;
}
