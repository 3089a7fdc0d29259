// Stop-the-world by signal; see stop_world.h. The handler is async-signal-safe (atomics and
// syscalls only). It stays installed after the scan: a thread that had the signal blocked may
// still take it later, and the default action of a real-time signal would kill the process.
#include "tracker/stop_world.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace heapledger::detail {
namespace {

struct Slot {
  StoppedThread info;
  std::atomic<int> phase;  // 0 signalled, 1 parked, 2 left the handler
};

// Zero in .bss, not written at load time: 832 KiB that only a leak scan touches.
constinit Slot g_slots[StopTheWorld::kMaxThreads]{};
std::size_t g_count = 0;
std::atomic<int> g_release{0};     // futex word
std::atomic<bool> g_stopping{false};
struct sigaction g_previous;

int stop_signal() { return SIGRTMAX - 3; }

long futex(std::atomic<int>* word, int op, int value) {
  return syscall(SYS_futex, reinterpret_cast<int*>(word), op, value, nullptr, nullptr, 0);
}

std::uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void forward(int sig, siginfo_t* info, void* uc) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, info, uc);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  }
}

void on_stop_signal(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  Slot* slot = nullptr;
  if (g_stopping.load(std::memory_order_acquire))
    for (std::size_t i = 0; i < g_count && !slot; ++i)
      if (g_slots[i].info.tid == self) slot = &g_slots[i];
  if (!slot) {  // not ours (or too late): the program's own use of the signal, if any
    forward(sig, info, context);
    errno = saved_errno;
    return;
  }
  auto* uc = static_cast<ucontext_t*>(context);
  slot->info.sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  for (int r = 0; r < NGREG && r < 23; ++r)
    slot->info.regs[r] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[r]);
  slot->phase.store(1, std::memory_order_release);
  while (g_release.load(std::memory_order_acquire) == 0) futex(&g_release, FUTEX_WAIT_PRIVATE, 0);
  slot->phase.store(2, std::memory_order_release);
  errno = saved_errno;
}

void install_handler() {
  static bool installed = false;
  if (installed) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigaction(stop_signal(), &sa, &g_previous);
  installed = true;
}

}  // namespace

// Reads /proc/self/task with getdents64 into a stack buffer: no allocation.
void StopTheWorld::list_threads() {
  g_count = 0;
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  alignas(8) char buf[8192];
  for (long n; (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      pid_t tid = static_cast<pid_t>(std::atoi(d->d_name));
      if (tid <= 0 || tid == self || g_count >= kMaxThreads) continue;
      g_slots[g_count].info = StoppedThread{tid, false, 0, {}};
      g_slots[g_count].phase.store(0, std::memory_order_relaxed);
      ++g_count;
    }
  }
  close(fd);
}

std::size_t StopTheWorld::stop(int timeout_ms) {
  install_handler();
  g_release.store(0, std::memory_order_release);
  g_stopping.store(true, std::memory_order_release);
  pid_t pid = getpid();
  for (std::size_t i = 0; i < g_count; ++i)
    if (syscall(SYS_tgkill, pid, g_slots[i].info.tid, stop_signal()) != 0) g_slots[i].phase.store(-1);
  std::uint64_t deadline = now_ms() + static_cast<std::uint64_t>(timeout_ms);
  std::size_t parked = 0;
  for (std::size_t i = 0; i < g_count; ++i) {
    while (g_slots[i].phase.load(std::memory_order_acquire) == 0 && now_ms() < deadline) sched_yield();
    g_slots[i].info.stopped = g_slots[i].phase.load(std::memory_order_acquire) == 1;
    parked += g_slots[i].info.stopped;
  }
  return parked;
}

void StopTheWorld::resume() {
  g_stopping.store(false, std::memory_order_release);  // late arrivals do not park
  g_release.store(1, std::memory_order_release);
  futex(&g_release, FUTEX_WAKE_PRIVATE, 1 << 30);
  for (std::size_t i = 0; i < g_count; ++i)
    if (g_slots[i].info.stopped)
      while (g_slots[i].phase.load(std::memory_order_acquire) != 2) sched_yield();
}

std::size_t StopTheWorld::count() const { return g_count; }
const StoppedThread& StopTheWorld::thread(std::size_t i) const { return g_slots[i].info; }

}  // namespace heapledger::detail
