// The loop of the interposed sigwait family (shim/sigwait_api.cc), apart so that a unit test can
// give it a wait and a clock of its own (tests/unit/sigwait_loop_test.cc).
#pragma once

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

namespace heapledger::detail {

using SigtimedwaitFn = int (*)(const sigset_t*, siginfo_t*, const struct timespec*);

// Calls wait(set, info, timeout) until it returns something `dropped` does not take (it is
// given every signal with its siginfo: info, or one of the loop's if info is null). After a drop
// a timed wait goes on for the time left, measured with now_ns from the first call; none left,
// it looks once more with a zero timeout (a signal pending beside the dropped one is still
// answered). *timeout is read only after a drop, once the first wait's kernel call has checked it
// (a bad pointer is the kernel's EFAULT, not a crash here); a timeout past 2^62 ns (146 years:
// {LONG_MAX, 0} is a common "for ever") stays that long.
inline int wait_dropping(SigtimedwaitFn wait, bool (*dropped)(int, siginfo_t*),
                         std::int64_t (*now_ns)(), const sigset_t* set, siginfo_t* info,
                         const struct timespec* timeout) {
  constexpr std::int64_t kNs = 1000000000, kForever = std::int64_t{1} << 62;
  siginfo_t own;
  siginfo_t* const out = info ? info : &own;
  const std::int64_t start = timeout ? now_ns() : 0;
  struct timespec left;
  const struct timespec* next = timeout;
  for (;;) {
    const int sig = wait(set, out, next);
    if (sig <= 0 || !dropped(sig, out)) return sig;
    if (!timeout) continue;
    const std::int64_t asked =
        timeout->tv_sec >= kForever / kNs ? kForever : timeout->tv_sec * kNs + timeout->tv_nsec;
    const std::int64_t ns = std::max<std::int64_t>(0, asked - (now_ns() - start));
    left.tv_sec = static_cast<time_t>(ns / kNs);
    left.tv_nsec = static_cast<long>(ns % kNs);
    next = &left;
  }
}

}  // namespace heapledger::detail
