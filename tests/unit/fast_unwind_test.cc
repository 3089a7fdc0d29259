// The fast unwinder's bounds of the main thread's stack (fast_unwind::main_thread_bounds): inside
// what glibc's pthread_getattr_np says, holding the frames of the thread, and left to glibc on
// other threads and under an unlimited stack.
#include "tracker/fast_unwind.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <thread>

namespace heapledger::detail {
namespace {

struct Bounds {
  std::uintptr_t lo = 0, hi = 0;
};

Bounds glibc_bounds() {
  pthread_attr_t attr;
  EXPECT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
  void* addr = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(pthread_attr_getstack(&attr, &addr, &size), 0);
  pthread_attr_destroy(&attr);
  return {reinterpret_cast<std::uintptr_t>(addr), reinterpret_cast<std::uintptr_t>(addr) + size};
}

// A frame well down the stack: its address must be inside the bounds.
__attribute__((noinline)) std::uintptr_t deep_frame(int depth) {
  volatile char pad[4096];
  pad[0] = static_cast<char>(depth);
  return depth == 0 ? reinterpret_cast<std::uintptr_t>(&pad[0])
                    : deep_frame(depth - 1) + pad[0] * 0;
}

TEST(MainThreadBounds, InsideGlibcsAndAroundTheThreadsFrames) {
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &limit), 0);
  Bounds ours;
  if (limit.rlim_cur == RLIM_INFINITY) {  // glibc's answer then
    EXPECT_FALSE(fast_unwind::main_thread_bounds(&ours.lo, &ours.hi));
    GTEST_SKIP() << "RLIMIT_STACK is unlimited";
  }
  ASSERT_TRUE(fast_unwind::main_thread_bounds(&ours.lo, &ours.hi));
  const Bounds glibc = glibc_bounds();
  // glibc's too, where the limit is under 128 MiB (it clamps only to a mapping in the way).
  if (limit.rlim_cur <= (std::uint64_t{128} << 20)) {
    EXPECT_EQ(ours.lo, glibc.lo);
  }
  EXPECT_GE(ours.lo, glibc.lo);
  EXPECT_EQ(ours.hi, glibc.hi);
  EXPECT_EQ(ours.hi % 4096, 0u);
  EXPECT_LE(ours.hi - ours.lo, std::uintptr_t{128} << 20);
  EXPECT_LE(ours.hi - ours.lo, limit.rlim_cur);
  const int local = 0;
  const auto here = reinterpret_cast<std::uintptr_t>(&local);
  EXPECT_GT(here, ours.lo);
  EXPECT_LT(here, ours.hi);
  const std::uintptr_t deep = deep_frame(64);  // 256 KiB further down
  EXPECT_GT(deep, ours.lo);
  EXPECT_LT(deep, here);
}

TEST(MainThreadBounds, OtherThreadsAreLeftToGlibc) {
  bool answered = true;
  std::thread([&] {
    std::uintptr_t lo = 0, hi = 0;
    answered = fast_unwind::main_thread_bounds(&lo, &hi);
  }).join();
  EXPECT_FALSE(answered);
}

// A child forked from another thread is its process's main thread, on that thread's stack: not
// the stack the process started with.
TEST(MainThreadBounds, AChildForkedFromAnotherThreadIsLeftToGlibc) {
  int status = -1;
  std::thread([&] {
    const pid_t child = fork();
    if (child == 0) {
      std::uintptr_t lo = 0, hi = 0;
      _exit(fast_unwind::main_thread_bounds(&lo, &hi) ? 1 : 0);
    }
    waitpid(child, &status, 0);
  }).join();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(MainThreadBounds, AnUnlimitedStackIsLeftToGlibc) {
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY) GTEST_SKIP() << "the hard limit is not unlimited";
  rlimit unlimited = saved;
  unlimited.rlim_cur = RLIM_INFINITY;
  ASSERT_EQ(setrlimit(RLIMIT_STACK, &unlimited), 0);
  std::uintptr_t lo = 0, hi = 0;
  const bool answered = fast_unwind::main_thread_bounds(&lo, &hi);
  ASSERT_EQ(setrlimit(RLIMIT_STACK, &saved), 0);
  EXPECT_FALSE(answered);
}

}  // namespace
}  // namespace heapledger::detail
