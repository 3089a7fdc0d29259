// The interposed sigwait family's loop (shim/sigwait_loop.h) with a wait and a clock of the
// test's own: what each wait is asked after a dropped request, and what the caller gets.
#include "shim/sigwait_loop.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <climits>
#include <utility>
#include <vector>

namespace heapledger::detail {
namespace {

constexpr int kOurs = 61;  // what `dropped` takes

struct Call {
  bool timed;
  struct timespec timeout;
};

// The fake wait answers from a script; the clock moves by each answer's cost.
struct Script {
  Script(std::vector<int> a, std::vector<std::int64_t> c)
      : answers(std::move(a)), costs_ns(std::move(c)) {}
  std::vector<int> answers;  // a signal, or -errno
  std::vector<std::int64_t> costs_ns;
  std::vector<Call> calls;
  std::size_t next = 0;
  std::int64_t clock_ns = 1000;
};
Script* g_script;

int fake_wait(const sigset_t*, siginfo_t* info, const struct timespec* timeout) {
  Script& s = *g_script;
  EXPECT_NE(info, nullptr) << "dropped needs a siginfo to look at";
  if (timeout == reinterpret_cast<const struct timespec*>(8)) {  // as the kernel finds it: EFAULT
    errno = EFAULT;
    return -1;
  }
  s.calls.push_back({timeout != nullptr, timeout ? *timeout : timespec{}});
  const std::size_t i = s.next++;
  s.clock_ns += s.costs_ns.at(i);
  const int answer = s.answers.at(i);
  if (answer < 0) {
    errno = -answer;
    return -1;
  }
  if (info) info->si_signo = answer;
  return answer;
}

bool fake_dropped(int sig, siginfo_t* info) { return sig == kOurs && info->si_signo == kOurs; }
std::int64_t fake_now() { return g_script->clock_ns; }

int run(Script& s, siginfo_t* info, const struct timespec* timeout) {
  g_script = &s;
  sigset_t set;
  sigemptyset(&set);
  return wait_dropping(fake_wait, fake_dropped, fake_now, &set, info, timeout);
}

TEST(SigwaitLoop, ASignalOfTheProgramsIsAnsweredAtOnce) {
  Script s{{10}, {0}};
  siginfo_t info{};
  EXPECT_EQ(run(s, &info, nullptr), 10);
  EXPECT_EQ(info.si_signo, 10);
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_FALSE(s.calls[0].timed);
}

TEST(SigwaitLoop, ADroppedRequestIsWaitedPastWithoutATimeout) {
  Script s{{kOurs, kOurs, 12}, {0, 0, 0}};
  EXPECT_EQ(run(s, nullptr, nullptr), 12);
  EXPECT_EQ(s.calls.size(), 3u);
  for (const Call& c : s.calls) EXPECT_FALSE(c.timed);
}

TEST(SigwaitLoop, AfterADropTheWaitGetsTheTimeLeft) {
  // 2.5 s asked; the request came after 0.7 s.
  Script s{{kOurs, -EAGAIN}, {700'000'000, 1'800'000'000}};
  const struct timespec asked = {2, 500'000'000};
  errno = 0;
  EXPECT_EQ(run(s, nullptr, &asked), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].timeout.tv_sec, 2);
  EXPECT_EQ(s.calls[0].timeout.tv_nsec, 500'000'000);
  EXPECT_EQ(s.calls[1].timeout.tv_sec, 1);
  EXPECT_EQ(s.calls[1].timeout.tv_nsec, 800'000'000);
}

TEST(SigwaitLoop, WithNoTimeLeftItLooksOnceMoreForAnotherPendingSignal) {
  // A poll (zero timeout) that took the request, with the program's own signal 64 pending too:
  // it was EAGAIN, 64 missed (a review's).
  Script s{{kOurs, 64}, {0, 0}};
  const struct timespec zero = {0, 0};
  EXPECT_EQ(run(s, nullptr, &zero), 64);
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_TRUE(s.calls[1].timed);
  EXPECT_EQ(s.calls[1].timeout.tv_sec, 0);
  EXPECT_EQ(s.calls[1].timeout.tv_nsec, 0);
}

TEST(SigwaitLoop, AForeverTimeoutStaysForeverAfterADrop) {
  // {LONG_MAX, 0}: its nanoseconds overflowed, and the wait after a drop ended at once (a
  // review's).
  Script s{{kOurs, 10}, {5'000'000'000, 0}};
  const struct timespec forever = {LONG_MAX, 0};
  EXPECT_EQ(run(s, nullptr, &forever), 10);
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_GT(s.calls[1].timeout.tv_sec, 4'000'000'000);
}

TEST(SigwaitLoop, ABadTimeoutPointerIsTheKernelsToRefuse) {
  // Read before the first wait, it crashed where the C library returns EFAULT (a review's).
  Script s{{}, {}};
  errno = 0;
  EXPECT_EQ(run(s, nullptr, reinterpret_cast<const struct timespec*>(8)), -1);
  EXPECT_EQ(errno, EFAULT);
}

}  // namespace
}  // namespace heapledger::detail
