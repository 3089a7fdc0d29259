// heapledger's own system calls (shim/kernel_call.h): a thread blocked in one holds no stale value
// in the argument registers the call does not take, since the leak scan reads a stopped thread's
// registers as roots. Seen as the kernel sees it: /proc/self/task/TID/syscall lists all six
// argument registers of a thread blocked in a call.
#include "shim/kernel_call.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace heapledger::detail {
namespace {

// What a caller left in its scratch registers: a block's address, say.
constexpr long kStale = 0x7d88bf1f4100;

#define HL_DIRTY_SCRATCH_REGISTERS()                                             \
  __asm__ volatile("mov %0, %%r8\n\tmov %0, %%r9\n\tmov %0, %%r10" ::"r"(kStale) \
                   : "r8", "r9", "r10")

__attribute__((noinline)) long read_by_kernel_call(int fd, char* byte) {
  HL_DIRTY_SCRATCH_REGISTERS();
  return os::kernel_call(SYS_read, fd, reinterpret_cast<long>(byte), 1);
}

// The C library's way, for comparison: syscall() moves r8 and r9 on into r10 and r8.
__attribute__((noinline)) long read_by_libc_syscall(int fd, char* byte) {
  HL_DIRTY_SCRATCH_REGISTERS();
  return syscall(SYS_read, fd, byte, 1);
}

// Blocks a thread in read(2) on an empty pipe through `read_one`, and returns the six argument
// registers the kernel shows for it while it waits.
struct Blocked {
  long args[6] = {};
  bool seen = false;
};
Blocked arguments_while_blocked(long (*read_one)(int, char*)) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return {};
  std::atomic<pid_t> tid{0};
  char byte = 0;
  std::thread reader([&] {
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    read_one(pipe_fds[0], &byte);
  });
  while (tid.load() == 0) std::this_thread::yield();
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid.load()));
  Blocked out;
  for (int tries = 0; tries < 5000 && !out.seen; ++tries) {
    // "NR ARG1 ... ARG6 SP PC" once it is blocked in call NR.
    if (FILE* f = std::fopen(path, "r")) {
      long number = -1;
      out.seen = std::fscanf(f, "%ld %lx %lx %lx %lx %lx %lx", &number, &out.args[0], &out.args[1],
                             &out.args[2], &out.args[3], &out.args[4], &out.args[5]) == 7 &&
                 number == SYS_read;
      std::fclose(f);
    }
    if (!out.seen) usleep(1000);
  }
  EXPECT_EQ(write(pipe_fds[1], "x", 1), 1);
  reader.join();
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return out;
}

TEST(KernelCall, ABlockedCallHoldsNoStaleValueInArgumentsItDoesNotTake) {
  const Blocked b = arguments_while_blocked(read_by_kernel_call);
  ASSERT_TRUE(b.seen) << "the reader was never seen blocked in read";
  EXPECT_EQ(b.args[2], 1);  // read's own three arguments are as given
  EXPECT_EQ(b.args[3], 0);  // r10
  EXPECT_EQ(b.args[4], 0);  // r8
  EXPECT_EQ(b.args[5], 0);  // r9
}

// The same read through the C library leaves the caller's stale values there: what the test above
// would see if heapledger made its calls that way (and the proof that it can see them).
TEST(KernelCall, TheCLibrarysSyscallPassesTheCallersStaleValuesOn) {
  const Blocked b = arguments_while_blocked(read_by_libc_syscall);
  ASSERT_TRUE(b.seen) << "the reader was never seen blocked in read";
  EXPECT_EQ(b.args[3], kStale);  // r10, from the caller's r8
  EXPECT_EQ(b.args[4], kStale);  // r8, from the caller's r9
}

TEST(KernelCall, AnswersAsTheKernelDoesOrAsSyscallDoes) {
  EXPECT_EQ(os::kernel_call(SYS_close, -1), -EBADF);
  errno = 0;
  EXPECT_EQ(os::kernel_call_errno(SYS_close, -1), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(os::kernel_call(SYS_getpid), getpid());
}

}  // namespace
}  // namespace heapledger::detail
