// Frees that heapledger settles later: in a run of frees (no allocation between them) on a
// single-threaded process, a small block's free waits until 8 more frees came or the thread
// allocates, so that the block's ledger record has arrived from memory. Each mode ends in a
// state where some frees are still waiting, and checks one place that must settle them.
//   pending_frees misuse    a run of frees with a double free and a mismatched free (a malloc'd
//                           block through operator delete) in it, then main returns: the exit
//                           report settles them (no leaks, both misuses with their stacks)
//   pending_frees fork      a run of frees, then fork: parent and child each settle their own
//   pending_frees peak      five 2,000-byte blocks freed in a row, then one of 30,000 allocated
//                           (the peak): the allocation settles the frees first
//   pending_frees realloc   a block freed in a run and then realloc'd (a double free): realloc
//                           settles before it asks whether the block is live
//   pending_frees abort     a double free in a run under on_error=abort: the process stops at it
//   pending_frees interior  a free into a block whose own free is pending: the pending one is
//                           settled first, so the block is free ("not the start of a heap block")
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hl_sink.h"

static void (*g_delete_one)(void*);  // operator delete, looked up first (dlsym may allocate)

__attribute__((noinline)) static void* alloc_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void first_free_site(void* p) { free(p); }
__attribute__((noinline)) static void second_free_site(void* p) { free(p); }
__attribute__((noinline)) static void wrong_delete_site(void* p) {
  g_delete_one(p);
  __asm__ volatile("");  // no tail call: this frame stays on the stack
}
__attribute__((noinline)) static void* realloc_freed_site(void* p) { return realloc(p, 16); }
__attribute__((noinline)) static void* freed_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void* kept_site(size_t n) { return malloc(n); }
__attribute__((noinline)) static void leak(void) { hl_sink(malloc(64)); }
__attribute__((noinline)) static void interior_free_site(void* p) { free(p); }

static void say(const char* line) {  // no stdio buffer: nothing allocated after the frees
  (void)!write(STDOUT_FILENO, line, strlen(line));
}

// Two blocks of n bytes freed in a row; returns the second, whose free waits.
__attribute__((noinline)) static void* run_of_two_site(size_t n) {
  void* a = malloc(n);
  void* b = malloc(n);
  hl_sink(a);
  hl_sink(b);
  free(a);
  free(b);
  return b;
}

// Five 100-byte blocks from alloc_site, freed in a row: all but the first wait.
static void free_a_run(void) {
  void* blocks[5];
  for (int i = 0; i < 5; ++i) hl_sink(blocks[i] = alloc_site(100));
  for (int i = 0; i < 5; ++i) free(blocks[i]);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  g_delete_one = (void (*)(void*))dlsym(RTLD_DEFAULT, "_ZdlPv");
  if (strcmp(mode, "misuse") == 0) {
    if (!g_delete_one) return 2;
    leak();
    void* twice = alloc_site(30);
    void* wrong = alloc_site(40);
    free_a_run();
    first_free_site(twice);
    second_free_site(twice);
    wrong_delete_site(wrong);
    say("misuse: main done\n");
    return 0;
  }
  if (strcmp(mode, "fork") == 0) {
    leak();
    free_a_run();
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) return 0;
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return 1;
    say("fork: main done\n");
    return 0;
  }
  if (strcmp(mode, "peak") == 0) {
    void* freed[5];
    for (int i = 0; i < 5; ++i) hl_sink(freed[i] = freed_site(2000));
    for (int i = 0; i < 5; ++i) free(freed[i]);
    void* kept = kept_site(30000);
    hl_sink(kept);
    free(kept);
    say("peak: main done\n");
    return 0;
  }
  if (strcmp(mode, "realloc") == 0) {
    void* q = realloc_freed_site(run_of_two_site(24));
    say(q ? "realloc of a freed block: a block\n" : "realloc of a freed block: NULL\n");
    return 0;
  }
  if (strcmp(mode, "abort") == 0) {
    second_free_site(run_of_two_site(24));
    say("abort: ran past the double free\n");
    return 0;
  }
  if (strcmp(mode, "interior") == 0) {
    interior_free_site((char*)run_of_two_site(64) + 16);
    say("interior: main done\n");
    return 0;
  }
  fprintf(stderr, "usage: pending_frees misuse|fork|peak|realloc|abort|interior\n");
  return 2;
}
