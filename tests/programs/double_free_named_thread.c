// A double free in a thread named "hl-freer" (first_named_site), then one in main
// (second_main_site): each heap error names the thread that made the call. Then a block the
// hl-freer thread freed once (freer_frees_once) that main frees again (main_frees_again): the
// error names both threads, main's call and hl-freer's first free.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void first_named_site(void* p) {
  free(p);
  free(p);
}

__attribute__((noinline)) void freer_frees_once(void* p) { free(p); }

__attribute__((noinline)) void main_frees_again(void* p) { free(p); }

static void* later;  // the block hl-freer frees once

static void* freer(void* p) {
  pthread_setname_np(pthread_self(), "hl-freer");
  first_named_site(p);
  freer_frees_once(later);
  return NULL;
}

__attribute__((noinline)) void second_main_site(void) {
  void* q = malloc(24);
  free(q);
  free(q);
}

int main(void) {
  pthread_t t;
  later = malloc(56);
  if (pthread_create(&t, NULL, freer, malloc(40)) != 0) return 1;
  pthread_join(t, NULL);
  second_main_site();
  main_frees_again(later);
  puts("double_free_named_thread: done");
  return 0;
}
