/* Link-mode consumer in C that calls no allocation function itself: strdup allocates inside libc.
   With GCC's default --as-needed (Debian, Ubuntu) the library was dropped from the link. */
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) char* c_consumer_leak(void) { return strdup("hello"); } /* 6 bytes */

int main(void) {
  char* volatile kept = c_consumer_leak();
  puts(kept ? "c link mode works" : "no memory");
  kept = NULL;
  return 0;
}
