// A program whose userfaultfd handler asks a limit while another thread's getrlimit waits for
// that handler: its struct is on a page the handler fills. heapledger copied the struct while it
// held its limits' lock, and the handler's getrlimit waited for that lock for good (both threads
// spinning, and SIGTERM did not end them: a review's). Prints what each thread got; exits 77
// where userfaultfd is not allowed (a test skips then).
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int g_uffd;

static void* handler(void* arg) {
  (void)arg;
  static char zero[4096] __attribute__((aligned(4096)));
  struct pollfd pf = {g_uffd, POLLIN, 0};
  struct uffd_msg msg;
  if (poll(&pf, 1, -1) != 1 || read(g_uffd, &msg, sizeof msg) != sizeof msg) return NULL;
  struct rlimit data;
  printf("handler: getrlimit %s\n", getrlimit(RLIMIT_DATA, &data) == 0 ? "ok" : "failed");
  struct uffdio_copy copy = {
      .dst = msg.arg.pagefault.address & ~(uint64_t)4095, .src = (uintptr_t)zero, .len = 4096};
  ioctl(g_uffd, UFFDIO_COPY, &copy);
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct rlimit lowered = {1ul << 30, RLIM_INFINITY};  // heapledger answers for limits once set
  if (setrlimit(RLIMIT_DATA, &lowered) != 0) return 1;
  char* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API};
  struct uffdio_register reg = {.range = {(uintptr_t)page, 4096},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (page == MAP_FAILED || g_uffd < 0 || ioctl(g_uffd, UFFDIO_API, &api) != 0 ||
      ioctl(g_uffd, UFFDIO_REGISTER, &reg) != 0) {
    puts("no userfaultfd here");
    return 77;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, handler, NULL) != 0) return 1;
  printf("main: getrlimit %s\n", getrlimit(RLIMIT_AS, (struct rlimit*)page) == 0 ? "ok" : "failed");
  pthread_join(t, NULL);
  return 0;
}
