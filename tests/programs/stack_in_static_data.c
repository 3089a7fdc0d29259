// A stack in a module's static data: the leak scan counted the mapping that holds a stack
// pointer from that pointer up only, so the module's globals below it were no roots, and what
// only they held came out definitely lost (a trial's). Each block here is held by a global placed
// below the stack (one struct: the order is fixed), except dropped_block's, which nothing holds.
//   altstack: the SIGTERM handler runs on the static alternate stack and calls exit() there.
//   thread:   a thread on a static stack (pthread_attr_setstack) is blocked when main exits.
//   mapped:   the negative case: a thread on a stack mapped with no guard page, right above a
//             file's mapping (a memfd), drops a block in a frame that has returned; the stale
//             copy below its stack pointer must not count (dropped_on_thread: definitely lost).
//             Taking any mapping next to a file's for static data counted it (a review's).
//   after_bss: the same with the stack mapped right at the end of the executable's .bss, where
//             the kernel merges the two into one line of /proc/self/maps: the .bss part counts
//             whole (held_by_global_below: reachable), the stack from its pointer up only
//             (a review's). Prints "no room after .bss" if that address is taken.
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct {
  void* table[4096];
  char stack[1 << 18];
} g_area __attribute__((aligned(64)));
static void* volatile g_sink;
static sem_t g_never, g_started;

__attribute__((noinline)) void* held_by_global_below(void) { return malloc(1138); }
__attribute__((noinline)) void dropped_block(void) { g_sink = malloc(77), g_sink = 0; }

static void exit_on_altstack(int sig) {
  (void)sig;
  exit(0);
}

__attribute__((noinline)) void* dropped_on_thread(void) { return malloc(4242); }

// The pointer at the bottom of a 4 KiB frame: far below what the frames of sem_wait reach later.
__attribute__((noinline)) void leave_a_stale_copy(void) {
  void* volatile area[512];
  area[0] = dropped_on_thread();
  for (int i = 1; i < 512; ++i) area[i] = 0;
  __asm__ volatile("" : : "r"(area) : "memory");
}

static void* drop_then_block(void* unused) {
  (void)unused;
  leave_a_stale_copy();
  sem_post(&g_started);
  sem_wait(&g_never);
  return NULL;
}

static uintptr_t g_executable_end;

static int find_executable_end(struct dl_phdr_info* info, size_t size, void* unused) {
  (void)size, (void)unused;
  for (int k = 0; k < info->dlpi_phnum; ++k)
    if (info->dlpi_phdr[k].p_type == PT_LOAD) {
      const uintptr_t end =
          info->dlpi_addr + info->dlpi_phdr[k].p_vaddr + info->dlpi_phdr[k].p_memsz;
      if (end > g_executable_end) g_executable_end = end;
    }
  return 1;  // the executable is the first
}

// A thread on [stack, stack + bytes) that drops a block, leaves a stale copy and blocks; exits.
static void run_dropping_thread_then_exit(char* stack, size_t bytes) {
  sem_init(&g_never, 0, 0);
  sem_init(&g_started, 0, 0);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, bytes);
  pthread_t t;
  pthread_create(&t, &attr, drop_then_block, NULL);
  sem_wait(&g_started);
  printf("thread blocked\n");
  fflush(stdout);
  exit(0);
}

static void* blocked(void* unused) {
  (void)unused;
  sem_wait(&g_never);
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "altstack";
  g_area.table[4000] = held_by_global_below();
  dropped_block();
  if (strcmp(mode, "mapped") == 0) {
    const size_t bytes = 1 << 20, page = 4096;
    char* stack =
        mmap(NULL, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = memfd_create("below-the-stack", 0);
    if (stack == MAP_FAILED || fd < 0 || ftruncate(fd, (off_t)page) != 0) return 2;
    // The file's page replaces the lowest page of the reservation: the stack lies right above it.
    if (mmap(stack, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
      return 2;
    run_dropping_thread_then_exit(stack + page, bytes);
  }
  if (strcmp(mode, "after_bss") == 0) {
    dl_iterate_phdr(find_executable_end, NULL);
    const size_t bytes = 1 << 20;
    void* at = (void*)((g_executable_end + 4095) & ~(uintptr_t)4095);
    char* stack = mmap(at, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (stack != at) {
      printf("no room after .bss\n");
      return 0;
    }
    run_dropping_thread_then_exit(stack, bytes);
  }
  if (strcmp(mode, "thread") == 0) {
    sem_init(&g_never, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, g_area.stack, sizeof g_area.stack);
    pthread_t t;
    pthread_create(&t, &attr, blocked, NULL);
    printf("thread started\n");
    fflush(stdout);
    exit(0);
  }
  stack_t ss = {.ss_sp = g_area.stack, .ss_size = sizeof g_area.stack};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = exit_on_altstack;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGTERM, &sa, NULL);
  printf("raising\n");
  fflush(stdout);
  raise(SIGTERM);
  return 1;
}
