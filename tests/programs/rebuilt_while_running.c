// Leaks 42 bytes at leak_here, says "ready", and exits when a line comes on stdin: the e2e test
// moves another program over its path meanwhile, as a rebuild does, and its report must still
// name this file's functions and lines.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void leak_here(void) {
  char* p = malloc(42);
  memset(p, 7, 42);
  __asm__ volatile("" : : "r"(p) : "memory");
}

int main(void) {
  leak_here();
  puts("ready");
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;
  return 0;
}
