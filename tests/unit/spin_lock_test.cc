// The allocator's lock, seen from a signal handler on the thread that takes it: exit() called from
// such a handler must be able to tell a lock its own thread holds (and skip the exit report rather
// than wait for it forever), at whatever instruction the signal interrupted.
#include "shim/spin_lock.h"
#include "shim/single_thread.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace heapledger::detail {
namespace {

TEST(SpinLock, KnowsWhichThreadHoldsIt) {
  SpinLock lock;
  EXPECT_FALSE(lock.held_by_this_thread());
  lock.lock();
  EXPECT_TRUE(lock.held_by_this_thread());
  bool elsewhere = true;
  std::thread([&] { elsewhere = lock.held_by_this_thread() || lock.try_lock(); }).join();
  EXPECT_FALSE(elsewhere);
  lock.unlock();
  EXPECT_FALSE(lock.held_by_this_thread());
}

TEST(SpinLock, TryGuardGivesUpALockItsThreadAlreadyHolds) {
  SpinLock lock;
  TryGuard outer(lock);
  EXPECT_TRUE(outer);
  TryGuard inner(lock);  // a signal handler re-entering the critical section
  EXPECT_FALSE(inner);
  EXPECT_TRUE(lock.held_by_this_thread());
}

SpinLock g_lock;
std::atomic<unsigned> g_seen_taken{0};
std::atomic<unsigned> g_taken_without_holder{0};

// Only the test's thread takes g_lock, so when the handler finds it taken, it is that thread's.
void sample(int) {
  if (g_lock.try_lock()) {
    g_lock.unlock();
    return;
  }
  g_seen_taken.fetch_add(1, std::memory_order_relaxed);
  if (!g_lock.held_by_this_thread()) g_taken_without_holder.fetch_add(1, std::memory_order_relaxed);
}

// Signals aimed at this thread while it takes and gives back g_lock in a loop.
void sample_while_locking() {
  g_seen_taken = 0;
  g_taken_without_holder = 0;
  struct sigaction sa = {};
  sa.sa_handler = sample;
  sigemptyset(&sa.sa_mask);
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  // A fast timer aimed at this thread, so signals land between every pair of instructions.
  sigevent ev = {};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGUSR2;
  ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  timer_t timer;
  ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
  itimerspec every = {{0, 20'000}, {0, 20'000}};
  ASSERT_EQ(timer_settime(timer, 0, &every, nullptr), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_seen_taken.load(std::memory_order_relaxed) < 5000 &&
         std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000; ++i) {
      g_lock.lock();
      g_lock.unlock();
    }
  }
  timer_delete(timer);
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_GT(g_seen_taken.load(), 0u) << "no signal arrived while the lock was held";
  EXPECT_EQ(g_taken_without_holder.load(), 0u) << "of " << g_seen_taken.load() << " samples";
}

// ctest runs each test in a process of its own: this one still has a single thread, and the lock
// takes its plain load-and-store path (see shim/single_thread.h).
TEST(SpinLock, ASignalNeverFindsItTakenWithoutItsHolderWhileSingleThreaded) {
  ASSERT_TRUE(single_threaded()) << "run this test in a process of its own (ctest does)";
  sample_while_locking();
  SpinLock lock;
  EXPECT_TRUE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock());
  EXPECT_TRUE(lock.held_by_this_thread());
  lock.unlock();
  EXPECT_FALSE(lock.held_by_this_thread());
}

TEST(SpinLock, ASignalNeverFindsItTakenWithoutItsHolderOnceThreadsExist) {
  std::thread([] {}).join();  // glibc's flag stays cleared from here on
  ASSERT_FALSE(single_threaded());
  sample_while_locking();
}

TEST(SingleThread, CounterAddsTheSameOnBothPaths) {
  std::atomic<std::int64_t> c{5};
  EXPECT_EQ(add_relaxed(c, std::int64_t{3}), 8);
  EXPECT_EQ(add_relaxed(c, std::int64_t{-10}), -2);
  std::thread([&] {
    EXPECT_FALSE(single_threaded());
    for (int i = 0; i < 100000; ++i) add_relaxed(c, std::int64_t{1});
  }).join();
  for (int i = 0; i < 100000; ++i) add_relaxed(c, std::int64_t{-1});
  EXPECT_EQ(c.load(), -2);
}

}  // namespace
}  // namespace heapledger::detail
