// realloc of pointers that are no live block's start: a freed block (a double free), a pointer
// 8 bytes into a live block (an invalid free), and realloc(p, 0) of a freed block. Each fails
// as glibc's would not (glibc aborts), returns NULL, and is reported naming realloc.
#include <stdio.h>
#include <stdlib.h>

void* volatile keep;

__attribute__((noinline)) void realloc_freed(void) {
  char* p = malloc(50);
  free(p);
  keep = realloc(p, 500);
}

__attribute__((noinline)) void realloc_inside(void) {
  char* a = malloc(100);
  keep = realloc(a + 8, 300);
  free(a);
}

__attribute__((noinline)) void realloc_freed_to_zero(void) {
  char* p = malloc(60);
  free(p);
  keep = realloc(p, 0);
}

int main(void) {
  realloc_freed();
  printf("realloc of a freed block: %s\n", keep ? "a block" : "NULL");
  realloc_inside();
  printf("realloc inside a block: %s\n", keep ? "a block" : "NULL");
  realloc_freed_to_zero();
  printf("realloc(p, 0) of a freed block: %s\n", keep ? "a block" : "NULL");
  return 0;
}
