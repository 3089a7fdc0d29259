// Leaks 40 bytes from leak_before_chdir, then changes directory to / and exits: relative report
// and suppressions paths must still be taken from the directory it started in. With a library's
// name, it then loads it (dlopen, which has the loaded objects looked at again) and leaks 24
// bytes from leak_after_dlopen.
//   chdir_exit [LIBRARY]
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void* leak_before_chdir(void) { return malloc(40); }
__attribute__((noinline)) void* leak_after_dlopen(void) { return malloc(24); }

int main(int argc, char** argv) {
  void* volatile lost = leak_before_chdir();
  (void)lost;
  lost = NULL;
  if (chdir("/") != 0) return 2;
  puts("chdir_exit: in /");
  if (argc > 1) {
    if (!dlopen(argv[1], RTLD_NOW)) return 3;
    lost = leak_after_dlopen();
    lost = NULL;
  }
  return 0;
}
