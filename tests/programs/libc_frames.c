// Leaks the copy strdup makes: the innermost frame of its allocation is in the C library.
//   libc_frames
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char* keep_name(const char* s) {
  return strdup(s);  // line 8: the leak's frame in this file
}

int main(void) {
  char* volatile name = keep_name("heapledger");
  printf("libc_frames: %s\n", name);
  name = NULL;
  return 0;
}
