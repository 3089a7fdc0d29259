// Stacks that a memoising unwinder could get wrong, each leaking a known number of blocks from a
// known chain of callers. Built without frame pointers, so most frames are rsp-based (the kind
// the fast unwinder memoises); the VLA frames are rbp-based.
//   - via_x / via_y call the same leaf from frames of the same size: the leaf runs at the same
//     stack pointer with the same return address, only the callers above differ;
//   - recursion to varying depths reaches the leaf at different stack pointers;
//   - a frame with a variable-length array (rbp-based CFA) reaches it with varying frame bases;
//   - an rbp-based frame whose frame base differs while the leaf below it runs at the same stack
//     pointer and every return-address slot a walk read before still holds what it held: the
//     leaf's (return address, sp) and the slots all match the other caller's walk, and only
//     the rbp (in a register, or saved by the leaf) tells the two apart (rbp_stale_*);
//   - a signal handler (on the thread's stack and on an alternate stack), a ucontext coroutine
//     and a second thread allocate too: stacks the fast path must hand to libunwind or walk right.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define NOINLINE __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

NOINLINE void* alloc_here(size_t n) {
  void* p = malloc(n);
  KEEP(p);
  return p;
}
NOINLINE void* via_x(size_t n) {
  void* p = alloc_here(n);
  KEEP(p);
  return p;
}
NOINLINE void* via_y(size_t n) {
  void* p = alloc_here(n);
  KEEP(p);
  return p;
}
NOINLINE void* recurse(int depth, size_t n) {
  void* p = depth ? recurse(depth - 1, n) : alloc_here(n);
  KEEP(p);
  return p;
}
NOINLINE void* with_vla(int len, size_t n) {
  char buf[len];
  memset(buf, 0, (size_t)len);
  KEEP(buf);
  void* p = alloc_here(n);
  KEEP(p);
  return p;
}
NOINLINE void* vla_caller_a(int len) { void* p = with_vla(len, 56); KEEP(p); return p; }
NOINLINE void* vla_caller_b(int len) { void* p = with_vla(len, 56); KEEP(p); return p; }

// The rbp case. pad_frame's alloca is sized so that the leaf below it always runs at the same sp
// (its frame base lower by as much as its alloca is smaller), and stale_b's frame, larger than
// stale_a's, is filled with the return address into stale_a: where stale_a's call into pad_frame
// kept its return address, stale_b's frame holds that same value. The callers are called from one
// indirect call site, so main's return address is the same too.
static uintptr_t g_first_base, g_ret_into_a, g_leaf_sp;
static int g_setup_broken;  // a condition of the rbp case did not hold (a compiler's layout)
NOINLINE void* rbp_leaf_plain(size_t n) {
  void* p = malloc(n);
  KEEP(p);
  return p;
}
NOINLINE void* rbp_leaf_saving(size_t n) {  // uses rbp itself: saves the caller's in its frame
  __asm__ volatile("" : : : "rbp");
  void* p = malloc(n);
  KEEP(p);
  return p;
}
NOINLINE void* pad_frame(int from_a, int saving, size_t n) {
  uintptr_t base = (uintptr_t)__builtin_frame_address(0);
  if (!g_first_base) g_first_base = base;
  if (from_a) g_ret_into_a = (uintptr_t)__builtin_return_address(0);
  char* pad = __builtin_alloca(2048 - (g_first_base - base));
  KEEP(pad);
  // The case's conditions: the leaf runs at one sp from both callers, and from stale_b the word
  // where stale_a's return address was holds that same address.
  if (!g_leaf_sp) g_leaf_sp = (uintptr_t)pad;
  if ((uintptr_t)pad != g_leaf_sp) g_setup_broken = 1;
  if (!from_a && (base == g_first_base || *(volatile uintptr_t*)(g_first_base + 8) != g_ret_into_a))
    g_setup_broken = 1;
  void* p = saving ? rbp_leaf_saving(n) : rbp_leaf_plain(n);
  KEEP(p);
  return p;
}
NOINLINE void* rbp_stale_a(int saving, size_t n) {
  void* p = pad_frame(1, saving, n);
  KEEP(p);
  return p;
}
NOINLINE void* rbp_stale_b(int saving, size_t n) {
  volatile uintptr_t fill[96];
  for (int i = 0; i < 96; ++i) fill[i] = g_ret_into_a;
  void* p = pad_frame(0, saving, n);
  KEEP(p);
  KEEP(fill);
  return p;
}
static void* (*volatile g_stale_callers[2])(int, size_t) = {rbp_stale_a, rbp_stale_b};

static volatile int g_in_handler;
static void on_signal(int sig) {
  (void)sig;
  g_in_handler = 1;
  void* p = alloc_here(72);  // leaked: one block per signal
  KEEP(p);
  g_in_handler = 0;
}

static ucontext_t g_main_ctx, g_co_ctx;
static void coroutine(void) {
  for (int i = 0; i < 10; ++i) {
    void* p = via_x(88);  // leaked: 10 blocks
    KEEP(p);
  }
}

static void* thread_main(void* arg) {
  (void)arg;
  for (int i = 0; i < 100; ++i) free(via_y(104));
  for (int i = 0; i < 20; ++i) KEEP(via_y(120));  // leaked: 20 blocks of 120
  return NULL;
}

int main(void) {
  // Same leaf, same sp, different callers, alternating: 500 leaked blocks each.
  for (int i = 0; i < 1000; ++i) {
    void* p = (i & 1) ? via_y(40) : via_x(24);
    KEEP(p);
    free(i % 4 < 2 ? via_x(16) : via_y(16));  // and freed ones in between
  }
  // Recursion: depth 0..7, 20 leaked blocks at each depth.
  for (int i = 0; i < 160; ++i) KEEP(recurse(i % 8, 32));
  // VLA frames of varying length from two callers: 50 each.
  for (int i = 0; i < 100; ++i) KEEP((i & 1) ? vla_caller_b(16 + 32 * (i % 5)) : vla_caller_a(16 + 48 * (i % 3)));
  // The rbp case, alternating callers from one call site: 30 leaked blocks of each size, each
  // leaf kind.
  for (int i = 0; i < 120; ++i) {
    const int saving = i >= 60;
    KEEP(g_stale_callers[i & 1](saving, (i & 1 ? 136 : 152) + (saving ? 16 : 0)));
  }
  // Signal handlers: 5 on this stack, 5 on an alternate stack.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL);
  for (int i = 0; i < 5; ++i) raise(SIGUSR1);
  static char altstack[1 << 16];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR2, &sa, NULL);
  for (int i = 0; i < 5; ++i) raise(SIGUSR2);
  // A coroutine on a stack of its own (from the heap, freed after).
  void* co_stack = malloc(1 << 16);
  getcontext(&g_co_ctx);
  g_co_ctx.uc_stack.ss_sp = co_stack;
  g_co_ctx.uc_stack.ss_size = 1 << 16;
  g_co_ctx.uc_link = &g_main_ctx;
  makecontext(&g_co_ctx, coroutine, 0);
  swapcontext(&g_main_ctx, &g_co_ctx);
  free(co_stack);
  // Another thread.
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);
  if (g_setup_broken) {
    fputs("unwind_paths: the rbp case's stack layout did not come out as planned\n", stderr);
    return 3;
  }
  puts("done");
  return 0;
}
