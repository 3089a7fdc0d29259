// Leaks 40 bytes from leak_before_chdir, then changes directory to / and exits: relative report
// and suppressions paths must still be taken from the directory it started in.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void* leak_before_chdir(void) { return malloc(40); }

int main(void) {
  void* volatile lost = leak_before_chdir();
  (void)lost;
  lost = NULL;
  if (chdir("/") != 0) return 2;
  puts("chdir_exit: in /");
  return 0;
}
