// A block the program still holds only in a register when a helper ends the process: main keeps
// its one pointer in rbx (callee-saved), wipes the stack below it, and calls a function that
// calls exit() (or glibc's error()). The register is saved in the exit path's frames, which
// the leak scan does not read as stack; it must still count as a root: 100 bytes still
// reachable, nothing lost (as memcheck says).
//   exit_register_root exit|error    exits 1
#include <error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_use_error;

__attribute__((noinline)) void wipe_stack(void) {
  volatile char bytes[16384];
  for (unsigned i = 0; i < sizeof bytes; ++i) bytes[i] = 0;
}

__attribute__((noinline)) void give_up(int argc) {
  if (argc > 0) {
    if (g_use_error) error(1, 0, "giving up");
    exit(1);
  }
  __asm__ volatile("");
}

__attribute__((noinline)) void* held_in_register(void) { return malloc(100); }

int main(int argc, char** argv) {
  g_use_error = argc > 1 && strcmp(argv[1], "error") == 0;
  register char* kept __asm__("rbx") = held_in_register();
  __asm__ volatile("" : "+r"(kept));
  wipe_stack();
  __asm__ volatile("" : "+r"(kept));
  give_up(argc);
  __asm__ volatile("" : "+r"(kept));
  puts(kept ? "kept" : "lost");
  free(kept);
  return 0;
}
