// A preload for one test: once the process is exiting (this library's destructor has run, as the
// dynamic loader runs destructors before heapledger's exit report), anonymous read-write
// mappings of 1 MiB and more that reserve their memory (not MAP_NORESERVE) fail with ENOMEM, as
// they would under an address-space limit reached by then. The program itself needs none;
// heapledger's exit scan needs some for its scratch space and cannot run. The report must say so
// rather than report no leaks.
//   LD_PRELOAD="libheapledger.so libfail_big_maps.so" PROGRAM
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int g_exiting;

__attribute__((destructor)) static void exiting(void) { g_exiting = 1; }

// The real call is the system call itself: looking the next mmap up could allocate, and
// heapledger's allocator maps memory.
void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
  if (g_exiting && (flags & MAP_ANONYMOUS) && !(flags & MAP_NORESERVE) && (prot & PROT_WRITE) &&
      len >= ((size_t)1 << 20)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  long r = syscall(SYS_mmap, addr, len, prot, flags, fd, offset);
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return MAP_FAILED;
  }
  return (void*)r;
}
