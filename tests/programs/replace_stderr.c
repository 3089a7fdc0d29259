// Puts another file on its stderr the way servers send theirs to a log, writes a line there, then
// leaks one block of 100 bytes from leak_site() and exits with status 3.
//   replace_stderr dup2|dup3|freopen FILE   FILE (appended to) becomes fd 2
//   replace_stderr collector FILE           a forked child copies what comes down a pipe into
//                                           FILE until its end (PostgreSQL's log collector);
//                                           the pipe becomes fd 2
//   replace_stderr open FILE                stderr closed, then FILE opened for the program's
//                                           data: it lands on fd 2 without being meant as stderr
//   replace_stderr reuse LOG FILE           LOG put on fd 2 and written to, then removed and
//                                           closed; FILE opened for data lands on fd 2 (and may
//                                           get LOG's inode number)
//   replace_stderr vfork FILE               (started with stderr closed) FILE opened for data
//                                           lands on fd 2; a vforked child dup2s a copy of it
//                                           onto its own fd 2 and _exits
// Every mode that opens FILE for data writes "DATA\n" into it.
#define _GNU_SOURCE  // dup3
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

__attribute__((noinline)) static void leak_site(void) {
  char* p = malloc(100);  // HL_LEAK_SITE leak_site
  if (p) strcpy(p, "leaked");
  hl_sink(p);
}

// The collector: copies the pipe's read end into FILE until every writer has closed it. Its own
// stderr stays the one the test gave, and it exits with _exit.
static void collect(int from, const char* path) {
  const int to = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  char buf[4096];
  ssize_t n;
  while ((n = read(from, buf, sizeof buf)) > 0)
    if (to < 0 || write(to, buf, (size_t)n) != n) _exit(1);
  _exit(0);
}

// Opens path for the program's data, which must land on fd 2; writes DATA there.
static int open_data(const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  return fd == STDERR_FILENO && write(fd, "DATA\n", 5) == 5;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char *mode = argv[1], *path = argv[2];
  int put = 1;  // whether the program put a file on fd 2 itself (and wrote a line there)
  if (!strcmp(mode, "open")) {
    close(STDERR_FILENO);
    if (!open_data(path)) return 1;
    put = 0;
  } else if (!strcmp(mode, "reuse")) {
    if (argc != 4) return 2;
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) != STDERR_FILENO) return 1;
    close(fd);
    fprintf(stderr, "the program's line on its new stderr\n");
    fflush(stderr);
    if (unlink(path) != 0 || close(STDERR_FILENO) != 0 || !open_data(argv[3])) return 1;
    put = 0;
  } else if (!strcmp(mode, "vfork")) {
    if (!open_data(path)) return 1;
    const int copy = dup(STDERR_FILENO);
    if (copy < 0) return 1;
    const pid_t child = vfork();
    if (child == 0) {
      dup2(copy, STDERR_FILENO);
      _exit(0);
    }
    if (child < 0 || waitpid(child, NULL, 0) != child) return 1;
    close(copy);
    put = 0;
  } else if (!strcmp(mode, "collector")) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    const pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
      close(fds[1]);
      collect(fds[0], path);
    }
    close(fds[0]);
    if (dup2(fds[1], STDERR_FILENO) != STDERR_FILENO) return 1;
    close(fds[1]);
  } else if (!strcmp(mode, "freopen")) {
    if (!freopen(path, "a", stderr)) return 1;
  } else {
    const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    const int to = !strcmp(mode, "dup3") ? dup3(fd, STDERR_FILENO, 0) : dup2(fd, STDERR_FILENO);
    if (to != STDERR_FILENO) return 1;
    close(fd);
  }
  if (put) {
    fprintf(stderr, "the program's line on its new stderr\n");
    fflush(stderr);
  }
  leak_site();
  return 3;
}
