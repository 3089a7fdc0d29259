// Leaks SITES blocks of 10 + d bytes, each from its own call stack (recursion depth d), then
// makes its stdout and stderr non-blocking (O_NONBLOCK, as event loops leave them) and exits:
// its report is larger than a pipe holds.
//   nonblocking_streams [SITES [MODE]]
// MODE "exit-meanwhile": the same, and a second thread calls exit(7) half a second after main
// returns, while the report waits for a slow reader; "blocking-exit-meanwhile": that with the
// streams left blocking.
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hl_sink.h"

static void* exit_soon(void* arg) {
  (void)arg;
  usleep(500000);
  exit(7);
}

int main(int argc, char** argv) {
  const int sites = argc > 1 ? atoi(argv[1]) : 200;
  const char* mode = argc > 2 ? argv[2] : "";
  for (int d = 0; d < sites; ++d) hl_leak_at_depth(d, 10 + d);
  if (strstr(mode, "exit-meanwhile")) {
    pthread_t t;
    if (pthread_create(&t, NULL, exit_soon, NULL) != 0) return 1;
  }
  if (strncmp(mode, "blocking", 8) != 0)
    for (int fd = 1; fd <= 2; ++fd) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  printf("done\n");
  return 0;
}
