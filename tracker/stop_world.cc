// Stop-the-world; see stop_world.h. First choice: ptrace, from a helper task that shares our
// memory (a thread cannot trace threads of its own process). A thread stopped that way is not
// interrupted in the usual sense: a sleep, poll, select or pause it was blocked in carries on when
// it is let go, as under a debugger. Where ptrace is not possible (a debugger or strace already
// traces the process, a seccomp filter, a Yama policy, a non-dumpable process), a signal: its
// handler is async-signal-safe (atomics and syscalls only) and stays installed after the scan (a
// thread that had the signal blocked may still take it later, and the default action of a
// real-time signal would kill the process); it ends such blocking calls early.
#include "tracker/stop_world.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shim/kernel_call.h"
#include "shim/os.h"

namespace heapledger::detail {
namespace {

struct Slot {
  StoppedThread info;
  // By signal: 0 signalled, 5 parking (its handler has it), 1 parked, 2 left the handler, 3 held
  // asleep (see look_at), 6 not signalled yet, as it has the signal blocked (see send_or_defer),
  // -1 not signalled (it could not be).
  // By ptrace: 0 listed, 1 seized, 2 stopped, 3 gone, 4 stopped without its registers.
  std::atomic<int> phase;
  // By signal, for a thread that has not parked: when to look at it next, and the gap after that
  // (doubling); once held, how many times it had been given a processor (see look_at).
  std::uint64_t next_look_ms;
  std::uint64_t look_gap_ms;
  std::uint64_t defer_until_ms;  // phase 6: sent the signal from then on, if running
  long long runs;
};

// Zero in .bss, not written at load time: under 1 MiB that only a leak scan touches.
constinit Slot g_slots[StopTheWorld::kMaxThreads]{};
std::size_t g_count = 0;

// The listed threads by id: each slot's index + 1 (0: an empty cell), open addressing in twice
// as many cells as slots. A stop signal's handler and a listing found a thread by reading the
// slots one by one: with thousands of threads, up to a megabyte (a slot is 250 bytes) for each
// handler and for each new thread listed. A cell is written once its slot's id is (release), and
// only ever from empty to full while a stop lasts, so a handler reads it without a lock: the
// cells on its own id's path were all full when its own was written.
constexpr unsigned kIndexBits = 13;
static_assert((std::size_t{1} << kIndexBits) >= 2 * StopTheWorld::kMaxThreads);
constexpr std::size_t kIndexMask = (std::size_t{1} << kIndexBits) - 1;
constinit std::atomic<std::uint32_t> g_index[kIndexMask + 1]{};

std::size_t index_home(pid_t tid) {
  return (static_cast<std::uint32_t>(tid) * 0x9E3779B1u) >> (32 - kIndexBits);
}

Slot* listed_slot(pid_t tid) {
  for (std::size_t i = index_home(tid), n = 0; n <= kIndexMask; i = (i + 1) & kIndexMask, ++n) {
    const std::uint32_t v = g_index[i].load(std::memory_order_acquire);
    if (v == 0) return nullptr;
    if (g_slots[v - 1].info.tid == tid) return &g_slots[v - 1];
  }
  return nullptr;
}

void index_slot(std::size_t slot) {  // its id written
  for (std::size_t i = index_home(g_slots[slot].info.tid);; i = (i + 1) & kIndexMask)
    if (g_index[i].load(std::memory_order_relaxed) == 0)
      return g_index[i].store(static_cast<std::uint32_t>(slot + 1), std::memory_order_release);
}

// Empties the cells of the slots listed so far (and nothing else: a small program's scan touches
// a page or two of the index, where clearing it all would touch eight).
void clear_index() {
  for (std::size_t slot = 0; slot < g_count; ++slot)
    for (std::size_t i = index_home(g_slots[slot].info.tid), n = 0; n <= kIndexMask;
         i = (i + 1) & kIndexMask, ++n)
      if (g_index[i].load(std::memory_order_relaxed) == slot + 1) {
        g_index[i].store(0, std::memory_order_relaxed);
        break;
      }
}
std::size_t g_unlisted = 0;        // threads past kMaxThreads when they were listed
std::atomic<int> g_release{0};     // futex word
std::atomic<std::size_t> g_parked{0};  // threads parked by signal in this stop (see await_parking)
std::atomic<bool> g_stopping{false};
struct sigaction g_previous;
bool g_by_ptrace = false;  // how the threads of the current stop were stopped

// The signal that stops threads where ptrace cannot: SIGRTMAX-3, which no library we know of
// uses. Under a debugger (whose ptrace is why ours failed) SIGURG instead: gdb stops the program
// at a real-time signal it does not know (SIG61), and in batch mode (`gdb -batch -ex run`) then
// kills it, report and exit status lost (a user trial's); SIGURG, ignored by default and all but
// unused, it passes on silently. Chosen once, when the handler goes in.
// Atomic: the program's threads read it in their sigwait (is_scan_request).
std::atomic<int> g_stop_signal{0};
int stop_signal() { return g_stop_signal.load(std::memory_order_relaxed); }
// The signals any signalfd of the process was made to read (a bit for each; see send_or_defer).
std::atomic<std::uint64_t> g_signalfd_signals{0};

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

// A stop request is queued with a mark a program's kill(), raise() or pthread_kill() cannot carry
// (the address of our slots in si_value), so the handler tells ours from the program's: a
// program raising SIGURG while a tracer made it the stop signal had its handler skipped.
bool send_stop(pid_t pid, pid_t tid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = stop_signal();
  info.si_code = SI_QUEUE;
  info.si_pid = pid;
  info.si_uid = getuid();
  info.si_value.sival_ptr = g_slots;
  return syscall(SYS_rt_tgsigqueueinfo, pid, tid, stop_signal(), &info) == 0;
}

// Reads the start of a small file (a /proc one) into buf, NUL-terminated; false if it cannot.
bool read_start_of(const char* path, char* buf, std::size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

// Whether thread tid of process pid is still there (signal 0 checks without sending).
bool alive(pid_t pid, pid_t tid) { return syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH; }

// How many times thread tid has been given a processor (the third field of its schedstat, counted
// as it is switched in); -1 if that cannot be read (it has ended, or the kernel keeps no count).
long long runs_of(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(tid));
  char text[128];
  if (!read_start_of(path, text, sizeof text)) return -1;
  char* at = text;
  for (int field = 0; field < 2; ++field) {
    std::strtoull(at, &at, 10);
    if (*at != ' ') return -1;
  }
  char* end = nullptr;
  const long long runs = std::strtoll(at, &end, 10);
  return end != at ? runs : -1;
}

// The signals thread tid has blocked (its /proc status's SigBlk); false if that cannot be read.
bool blocked_signals(pid_t tid, std::uint64_t* mask) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/status", static_cast<int>(tid));
  // The scanning thread's alone. SigBlk comes about 1 KB in; a Groups line of hundreds of groups
  // could push it past the end, and then the thread is waited for as before.
  static char text[4096];
  if (!read_start_of(path, text, sizeof text)) return false;
  const char* field = std::strstr(text, "\nSigBlk:");
  if (!field) return false;
  *mask = std::strtoull(field + std::strlen("\nSigBlk:"), nullptr, 16);
  return true;
}

// The mask of the C library's end of a thread (glibc 2.34 on, its bugs 12889 and 28361): every
// signal blocked for good but SIGSETXID (33), after the thread's destructors. The program's own
// sigprocmask cannot block SIGCANCEL (32), but a thread with every signal blocked that is
// cancelled runs its cleanup handlers (program code) with this mask too (a review's).
constexpr std::uint64_t signal_bit(int sig) { return std::uint64_t{1} << (sig - 1); }
constexpr std::uint64_t kThreadEndMask =
    ~(signal_bit(SIGKILL) | signal_bit(SIGSTOP) | signal_bit(33));

bool is_stop_request(const siginfo_t* info) {
  return info->si_code == SI_QUEUE && info->si_pid == getpid() &&
         info->si_value.sival_ptr == g_slots;
}

// The stop signal's handler, and take_scan_request's (in_call: blocked in a system call whatever
// the context says).
void park(int sig, siginfo_t* info, void* context, bool in_call) {
  int saved_errno = errno;
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  Slot* slot = g_stopping.load(std::memory_order_acquire) ? listed_slot(self) : nullptr;
  // Ours carry our mark (see send_stop); the program's own use of the signal goes to its handler.
  // One of ours that comes too late, to a thread that had the signal blocked during the scan and
  // unblocked it since, is dropped: the program's handler ran for it (under a tracer, SIGURG).
  if (!is_stop_request(info)) {
    forward(sig, info, context);
    errno = saved_errno;
    return;
  }
  // Nor a thread the scan holds asleep already (see look_at): it has what it needs of this one, and
  // the thread has run since, so it counts as not stopped.
  int signalled = 0;
  if (!slot || !slot->phase.compare_exchange_strong(signalled, 5, std::memory_order_acq_rel)) {
    errno = saved_errno;
    return;
  }
  auto* uc = static_cast<ucontext_t*>(context);
  slot->info.sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  // Blocked in a system call when the signal came, as threads at exit mostly are (ptrace tells it
  // by orig_rax). Without this, copies of dropped pointers below its stack pointer made definite
  // leaks "reachable" under strace or gdb.
  slot->info.in_syscall =
      in_call || at_system_call(static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]),
                                static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RAX]));
  for (int r = 0; r < NGREG && r < 23; ++r)
    slot->info.regs[r] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[r]);
  slot->phase.store(1, std::memory_order_release);
  g_parked.fetch_add(1, std::memory_order_relaxed);
  while (g_release.load(std::memory_order_acquire) == 0) futex(&g_release, FUTEX_WAIT_PRIVATE, 0);
  slot->phase.store(2, std::memory_order_release);
  errno = saved_errno;
}

void on_stop_signal(int sig, siginfo_t* info, void* context) { park(sig, info, context, false); }

void install_handler() {
  static bool installed = false;
  if (installed) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  // SIGCANCEL too, which glibc's sigfillset leaves open: an asynchronous cancellation ran the
  // thread's cleanup handlers (the program's code) on the stack the scan was reading, and the
  // thread never left the handler the usual way (see resume). SIGSETXID stays open: glibc's own
  // handler, which another thread's setuid() waits for.
  reinterpret_cast<std::uint64_t*>(&sa.sa_mask)[0] |= signal_bit(32);
  g_stop_signal.store(
      os::status_field("/proc/self/status", "\nTracerPid:") > 0 ? SIGURG : SIGRTMAX - 3,
      std::memory_order_relaxed);
  sigaction(stop_signal(), &sa, &g_previous);
  installed = true;
}

// ---- ptrace ----
//
// The tracer shares our memory but not our thread: it must not touch thread-local storage (its
// thread pointer is ours: errno would be this thread's), so it makes its system calls itself,
// and it runs with every signal blocked (it has a copy of the program's handlers).
using os::kernel_call;

void raw_sleep_us(long us) {
  timespec ts{0, us * 1000};
  kernel_call(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
}

std::uint64_t raw_now_ms() {
  timespec ts{};
  kernel_call(SYS_clock_gettime, CLOCK_MONOTONIC, reinterpret_cast<long>(&ts));
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

// Threads started while the others are being stopped are listed and stopped too, by either way of
// stopping, until a listing finds none new: at most kMaxListings listings, each listing's threads
// given at least kRoundMs to stop.
constexpr int kMaxListings = 16;
constexpr std::uint64_t kRoundMs = 50;
// How soon the signal-based stop looks in /proc at a thread that has not parked (a thread takes
// the signal at once unless it has it blocked); see look_at.
constexpr std::uint64_t kLookMs = 2;
// While threads still park, the signal-based stop looks at no thread in /proc (each look is
// three reads there, processor time that threads waiting to take the signal need), but for one
// pass every kLooksAtLeastMs (threads with the signal blocked are held, ended ones let go, however
// long the others take); and it waits past its deadline while one has parked in the last
// kQuietMs, up to kMaxOverMs past the first round's deadline for all rounds together (each later
// listing's threads still get kRoundMs: up to 15 x 50 ms more; the ptrace stop waits on while
// threads still stop: kProgressMs). 4,000 threads asleep at exit, stopped by signal: the scan
// 145 -> 136 ms, three runs each, every thread stopped either way (`tests/bench/sleeping_threads
// 4000 seccomp`, its scan.milliseconds).
constexpr std::uint64_t kQuietMs = 50;
constexpr std::uint64_t kMaxOverMs = 2000;
constexpr std::uint64_t kLooksAtLeastMs = 16;
// How long a thread found with the stop signal blocked is looked at before it is sent the signal
// all the same (see send_or_defer).
constexpr std::uint64_t kDeferMs = 25;
// How long resume() waits for the parked threads to leave the handler, all of them together.
constexpr std::uint64_t kLeaveMs = 2000;

struct Tracer {
  // 0: the tracer waits for leave to trace; 1: go; 2: it has stopped what it could (or failed);
  // 3: let them go (or: the parent gave up on it). The parent learns that it is done by reaping it.
  std::atomic<int> phase{0};
  std::atomic<int> failed{0};
  int timeout_ms = 0;
  // No thread is waited for past this, however they come (see stop_slots): within the parent's
  // wait, its timeout and 2 s more.
  std::uint64_t last_deadline_ms = 0;
  pid_t parent = 0;  // the process it traces for; it ends itself if that one is gone
  pid_t scanner = 0;     // the thread that scans (never stopped)
  pid_t ended_main = 0;  // a main thread that has ended (pthread_exit): nothing to stop
  int stop_signal[StopTheWorld::kMaxThreads];  // a signal a thread was stopped with, to hand back
};
constinit Tracer g_tracer{};

// Waits, a millisecond at a time, until phase reaches `want`: up to limit_ms of clock time (-1:
// no limit). In the tracer, it also ends the wait, false, if the process it traces for is gone.
bool await_phase(int want, int limit_ms, bool in_tracer) {
  const std::uint64_t start = raw_now_ms();
  while (g_tracer.phase.load(std::memory_order_acquire) < want) {
    if (limit_ms >= 0 && raw_now_ms() - start >= static_cast<std::uint64_t>(limit_ms)) return false;
    if (in_tracer && kernel_call(SYS_getppid) != g_tracer.parent) return false;
    raw_sleep_us(1000);
  }
  return true;
}

// Whether a task's /proc stat line says it has ended (a zombie, or dead and not yet released).
// Where field n (counted from 1, as proc(5) does) of a task's /proc stat line begins; null if
// the line has fewer.
const char* stat_field(const char* stat, int n) {
  const char* at = std::strrchr(stat, ')');  // the name may hold anything, ')' included
  for (int field = 2; at && field < n; ++field) at = std::strchr(at + 1, ' ');
  return at ? at + 1 : nullptr;
}

bool stat_says_ended(const char* stat) {
  const char* state = stat_field(stat, 3);
  return state && (*state == 'Z' || *state == 'X');
}

// Writes v's decimal digits into path from `at` on; returns where they end (no printf in the
// tracer).
std::size_t put_number(char* path, std::size_t at, unsigned long v) {
  char digits[20];
  std::size_t n = 0;
  for (; v || !n; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  while (n) path[at++] = digits[--n];
  return at;
}

// Whether thread tid, which refused to be seized, has ended: from its exit until it is released a
// thread is still there, and ptrace refuses it (EPERM) as it refuses a thread another tracer has.
// In the first listing that refusal read as ptrace not allowed, and the scan stopped threads with
// its signal instead (ending their sleeps early); in a later one the thread counted as one not
// stopped, with the report's warning (each 3 runs in 300 of threads_ending_at_exit beside another).
bool ended_thread(pid_t tid) {
  char path[64] = "/proc/";
  std::size_t at = put_number(path, 6, static_cast<unsigned long>(g_tracer.parent));
  std::memcpy(path + at, "/task/", 6);
  at = put_number(path, at + 6, static_cast<unsigned long>(tid));
  std::memcpy(path + at, "/stat", 6);
  const long fd =
      kernel_call(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
  if (fd == -ENOENT || fd == -ESRCH) return true;
  if (fd < 0) return false;
  char buf[512];
  const long got = kernel_call(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1);
  kernel_call(SYS_close, fd);
  if (got == -ESRCH) return true;
  if (got <= 0) return false;
  buf[got] = 0;
  return stat_says_ended(buf);
}

// How a thread we interrupted reported in: our stop (or a job-control stop), or a signal on its
// way to it, which must be handed back when it is let go.
void note_stop(std::size_t i, int status) {
  const int sig = WSTOPSIG(status);
  const bool event_stop = (status >> 16) == PTRACE_EVENT_STOP;
  g_tracer.stop_signal[i] = event_stop ? 0 : sig;
}

// Seizes and interrupts the threads of slots [from, g_count) and waits for each to stop, until the
// deadline, which each thread that stops moves to kProgressMs later at least (up to
// last_deadline_ms): on a loaded machine threads stop as they get a core, and a fixed deadline
// left the last of them running through the scan while the others were still stopping (a CI run
// beside a build: 17 of 23 stopped in 595 ms, the report warning that leaks may hide). False if
// ptrace is not allowed here, as the first listing's first refusal says (failed
// is set; nothing has been stopped yet, and those seized are let go as this task ends).
bool stop_slots(std::size_t from, std::uint64_t deadline) {
  constexpr std::uint64_t kProgressMs = 50;
  std::size_t seized = 0;
  for (std::size_t i = from; i < g_count; ++i) {
    g_slots[i].phase.store(0, std::memory_order_relaxed);
    g_tracer.stop_signal[i] = 0;
    const long r = kernel_call(SYS_ptrace, PTRACE_SEIZE, g_slots[i].info.tid, 0, 0);
    if (r == 0) {
      g_slots[i].phase.store(1, std::memory_order_relaxed);  // seized
      ++seized;
    } else if (r == -ESRCH || ended_thread(g_slots[i].info.tid)) {
      g_slots[i].phase.store(3, std::memory_order_relaxed);  // gone
      g_slots[i].info.gone = true;
    } else if (from == 0) {  // not allowed: say so
      g_tracer.failed.store(1, std::memory_order_relaxed);
      return false;
    }
    // Refused in a later listing, ptrace being allowed (another tracer has that thread): it is
    // not stopped. Giving up there let the threads stopped already go with this task's end, and
    // the signals they were stopped with, read by wait4, were lost (a review's).
  }
  for (std::size_t i = from; i < g_count; ++i)
    if (g_slots[i].phase.load(std::memory_order_relaxed) == 1)
      kernel_call(SYS_ptrace, PTRACE_INTERRUPT, g_slots[i].info.tid, 0, 0);
  // Each reports its stop; one that does not in time (a vfork parent, or stuck in the kernel) is
  // counted as not stopped (it stops when it can, and is let go as this task ends), and one that
  // exited is gone.
  std::size_t pending = seized;
  while (pending > 0 && raw_now_ms() <= deadline) {
    bool progress = false;
    for (std::size_t i = from; i < g_count; ++i) {
      if (g_slots[i].phase.load(std::memory_order_relaxed) != 1) continue;
      int status = 0;
      const long r = kernel_call(SYS_wait4, g_slots[i].info.tid, reinterpret_cast<long>(&status),
                                 __WALL | WNOHANG, 0);
      if (r == 0) continue;
      progress = true;
      --pending;
      if (r < 0 || !WIFSTOPPED(status)) {
        g_slots[i].phase.store(3, std::memory_order_relaxed);  // gone
        g_slots[i].info.gone = true;
        continue;
      }
      note_stop(i, status);
      user_regs_struct regs;
      if (kernel_call(SYS_ptrace, PTRACE_GETREGS, g_slots[i].info.tid, 0,
                      reinterpret_cast<long>(&regs)) != 0) {
        g_slots[i].phase.store(4, std::memory_order_relaxed);  // stopped, registers unknown
        continue;
      }
      StoppedThread& th = g_slots[i].info;
      th.sp = regs.rsp;
      th.in_syscall = static_cast<long long>(regs.orig_rax) >= 0;
      const unsigned long long values[] = {regs.r15, regs.r14, regs.r13, regs.r12, regs.rbp, regs.rbx,
                                           regs.r11, regs.r10, regs.r9,  regs.r8,  regs.rax, regs.rcx,
                                           regs.rdx, regs.rsi, regs.rdi, regs.rsp, regs.rip};
      static_assert(sizeof values / sizeof values[0] <= sizeof th.regs / sizeof th.regs[0]);
      for (std::size_t k = 0; k < sizeof th.regs / sizeof th.regs[0]; ++k)
        th.regs[k] = k < sizeof values / sizeof values[0] ? static_cast<std::uintptr_t>(values[k]) : 0;
      th.stopped = true;
      g_slots[i].phase.store(2, std::memory_order_relaxed);  // stopped
    }
    if (progress) {
      deadline =
          std::min(g_tracer.last_deadline_ms, std::max(deadline, raw_now_ms() + kProgressMs));
    } else {
      if (kernel_call(SYS_getppid) != g_tracer.parent) break;
      raw_sleep_us(1000);
    }
  }
  return true;
}

// Adds to the slots the threads of the process not listed yet (nor the thread that scans, nor an
// ended main thread), read from /proc/PID/task into a stack buffer: no allocation, and raw system
// calls (no errno, no TLS), as the tracer needs; list_threads() takes the first list with it too.
void list_new_threads() {
  char path[32] = "/proc/";
  std::size_t at = put_number(path, 6, static_cast<unsigned long>(g_tracer.parent));
  std::memcpy(path + at, "/task", 6);
  const long fd = kernel_call(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buf[4096];
  std::size_t unlisted = 0;
  for (long got;
       (got = kernel_call(SYS_getdents64, fd, reinterpret_cast<long>(buf), sizeof buf)) > 0;) {
    for (long off = 0; off < got;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      long tid = 0;
      for (const char* c = d->d_name; *c >= '0' && *c <= '9'; ++c) tid = tid * 10 + (*c - '0');
      if (tid <= 0 || tid == g_tracer.scanner || tid == g_tracer.ended_main) continue;
      if (listed_slot(static_cast<pid_t>(tid))) continue;
      if (g_count >= StopTheWorld::kMaxThreads) {
        ++unlisted;
        continue;
      }
      g_slots[g_count].info = StoppedThread{static_cast<pid_t>(tid), false, 0, {}, false, false};
      g_slots[g_count].phase.store(0, std::memory_order_relaxed);
      index_slot(g_count);
      ++g_count;
    }
  }
  kernel_call(SYS_close, fd);
  g_unlisted = unlisted;  // this listing's count: the threads past the limit now
}

int tracer_main(void*) {
  // If the thread that started it dies (the process killed mid-scan, or ended by another thread),
  // so does the tracer, which lets the threads it holds go: they could not die while traced, nor
  // the process be reaped, nor another thread's execve finish.
  kernel_call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (kernel_call(SYS_getppid) != g_tracer.parent) return 0;  // it died before that took hold
  if (!await_phase(1, 2000, true)) return 0;                  // the parent gave up on us
  const std::uint64_t deadline = raw_now_ms() + static_cast<std::uint64_t>(g_tracer.timeout_ms);
  g_tracer.last_deadline_ms = deadline + 1500;
  if (!stop_slots(0, deadline)) {  // those seized are let go as this task ends
    int go = 1;
    g_tracer.phase.compare_exchange_strong(go, 2, std::memory_order_release);
    return 0;
  }
  // Threads started since the list was taken (by threads not stopped yet then) run on through the
  // scan, writing over what it reads: a server starting workers as it exited had 4.9 MB of
  // reachable blocks reported "definitely lost" (a user trial's). They are listed and stopped
  // too, until a listing finds none new: the threads stopped start no more.
  // Each listing's threads get at least kRoundMs to stop, past the first deadline if need be: on
  // a loaded machine the first listing's took most of it, and the threads found later were given
  // none (a CI run: 18 threads listed, 12 stopped). At most kMaxListings: within the parent's wait
  // (its timeout and 2 s more).
  for (int round = 0; round < kMaxListings; ++round) {
    const std::size_t before = g_count;
    list_new_threads();
    if (g_count == before) break;
    stop_slots(before,
               std::min(g_tracer.last_deadline_ms, std::max(deadline, raw_now_ms() + kRoundMs)));
  }
  // Stopped what it could; unless the parent gave up on it meanwhile (it set 3), wait for the word.
  int go = 1;
  if (g_tracer.phase.compare_exchange_strong(go, 2, std::memory_order_acq_rel)) await_phase(3, -1, true);
  for (std::size_t i = 0; i < g_count; ++i) {
    const int phase = g_slots[i].phase.load(std::memory_order_relaxed);
    if (phase == 2 || phase == 4)
      kernel_call(SYS_ptrace, PTRACE_DETACH, g_slots[i].info.tid, 0, g_tracer.stop_signal[i]);
    // A thread seized but never stopped is let go when this task exits.
  }
  return 0;
}

pid_t g_tracer_pid = 0;

// A seccomp filter may kill the process for a system call it does not allow (ptrace, clone).
// Filters are per thread, and the helper inherits this one's: this thread's status, not the main
// thread's (/proc/self).
bool under_seccomp_filter() {
  long mode = os::status_field("/proc/thread-self/status", "\nSeccomp:");
  if (mode < 0) mode = os::status_field("/proc/self/status", "\nSeccomp:");
  return mode != 0;  // no answer counts as a filter
}

// Yama's "restricted" policy lets only a process's ancestors trace it unless it names a tracer.
bool yama_restricted() {
  char buf[8];
  return read_start_of("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof buf) && buf[0] == '1';
}

// The tracer's stack, mapped when the threads are listed: before the leak scan takes its list
// of heapledger's own memory, which it leaves out of the roots.
constexpr std::size_t kTracerStackBytes = 64 * 1024;
void* g_tracer_stack = nullptr;

// Stops the listed threads with ptrace from a helper task; false (nothing stopped, nothing left
// attached) if that is not possible here.
bool stop_by_ptrace(int timeout_ms) {
  if (g_count == 0 || !g_tracer_stack || under_seccomp_filter()) return false;
  g_tracer.phase.store(0, std::memory_order_relaxed);
  g_tracer.failed.store(0, std::memory_order_relaxed);
  g_tracer.timeout_ms = timeout_ms;
  g_tracer.parent = getpid();
  for (std::size_t i = 0; i < g_count; ++i) g_slots[i].info.stopped = g_slots[i].info.gone = false;
  // No exit signal, so no SIGCHLD and no plain wait() sees this task (a waitpid(-1, __WALL) in
  // another thread of the program could still collect it). It starts with every signal blocked:
  // it has a copy of the program's handlers, and a SIGCHLD for each thread it stops, or a signal
  // to the process group, would otherwise run one there (one that reaps children would take the
  // stopped threads' reports).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = clone(tracer_main, static_cast<char*>(g_tracer_stack) + kTracerStackBytes,
                          CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid <= 0) return false;
  // Only where needed: it replaces any tracer the program named (a crash reporter's, say).
  if (yama_restricted()) prctl(PR_SET_PTRACER, pid, 0, 0, 0);
  g_tracer.phase.store(1, std::memory_order_release);
  const bool answered = await_phase(2, timeout_ms + 2000, false);
  if (!answered || g_tracer.failed.load(std::memory_order_relaxed)) {
    g_tracer.phase.store(3, std::memory_order_release);  // if it is still going: let go, and end
    int status;
    while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
    }
    for (std::size_t i = 0; i < g_count; ++i) {  // as list_threads left them, for the signal
      g_slots[i].info.stopped = g_slots[i].info.gone = false;
      g_slots[i].phase.store(0, std::memory_order_relaxed);
    }
    return false;
  }
  g_tracer_pid = pid;
  return true;
}

void resume_from_ptrace() {
  g_tracer.phase.store(3, std::memory_order_release);
  int status;
  while (waitpid(g_tracer_pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  g_tracer_pid = 0;
}

// Whether thread tid had started by `when` (ns of CLOCK_BOOTTIME): its /proc stat's start time
// (field 22, in clock ticks) floored to a tick, so that a mark an earlier thread of the same id
// left would have to fall in the tick this one started in, every other id handed out between.
bool started_by(pid_t tid, std::uint64_t when) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  char text[512];
  const char* start = read_start_of(path, text, sizeof text) ? stat_field(text, 22) : nullptr;
  const long ticks_per_s = sysconf(_SC_CLK_TCK);
  return start && ticks_per_s > 0 &&
         when >= std::strtoull(start, nullptr, 10) *
                     (1000000000u / static_cast<std::uint64_t>(ticks_per_s));
}

// What the scan can do about a thread that has not parked: a thread with our signal blocked never
// does (a server's signal thread in sigwait() with every signal blocked; one in the C library's
// end of a thread, where a detached one may wait for the stack cache's lock that a thread parked
// inside pthread_create holds: up to 169 of 173 threads of threads_ending_at_exit were "not
// stopped", each waited for the whole timeout).
enum class Look { kWait, kHeld, kEnded };

// Looks in /proc at the thread of slot. One with our signal blocked, asleep in a system call,
// runs no code until the kernel wakes it; its system call, stack pointer and instruction pointer
// are in /proc (a thread may read another's of its own process), with the call's arguments; its
// other registers are not (as for a thread not stopped). It is held (counted stopped, in a system
// call, if it has not been given a processor by the end of the scan: see confirm_held), or, in the
// C library's end of a thread past the tracker's exit destructor for it (ended_at), counted as
// ended: it runs nothing of the program's or ours again, and its stack is among the dead ones.
// The system call thread tid sleeps in, from /proc: its number (-1: none, or unknown) and, in
// values, its six arguments, stack pointer and instruction pointer.
long syscall_of(pid_t tid, std::uintptr_t values[8]) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  char text[256];  // "NR ARG1 .. ARG6 SP PC", or "-1 SP PC" outside one, or "running"
  if (!read_start_of(path, text, sizeof text)) return -1;
  char* at = text;
  const long nr = std::strtol(at, &at, 10);
  if (at == text || nr < 0) return -1;
  for (int k = 0; k < 8; ++k) {
    char* end = nullptr;
    values[k] = std::strtoull(at, &end, 16);
    if (end == at) return -1;
    at = end;
  }
  return nr;
}

// Holds the thread of slot as it sleeps in a system call (values: syscall_of's), if it has not
// run since `runs` and nothing else has answered for it (phase 0, signalled or about to be, or 6,
// not signalled).
bool hold_asleep(Slot& slot, long long runs, const std::uintptr_t values[8]) {
  if (runs_of(slot.info.tid) != runs) return false;  // it ran while it was read
  int waiting = slot.phase.load(std::memory_order_acquire);
  if ((waiting != 0 && waiting != 6) ||
      !slot.phase.compare_exchange_strong(waiting, 3, std::memory_order_acq_rel))
    return false;
  const std::uintptr_t sp = values[6], pc = values[7];
  slot.info.sp = sp;
  slot.info.in_syscall = true;
  for (std::uintptr_t& reg : slot.info.regs) reg = 0;
  // Of its registers, those that passed the system call's arguments are known too.
  const int args[] = {REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9};
  for (int k = 0; k < 6; ++k) slot.info.regs[args[k]] = values[k];
  slot.info.regs[REG_RSP] = sp;
  slot.info.regs[REG_RIP] = pc;
  slot.runs = runs;
  return true;
}

// A thread asleep in sigwait() and its kin (rt_sigtimedwait) for a set that holds the stop signal
// takes the stop request as the answer to its wait: the program gets a signal it never sent (a
// review's: a signal thread waiting on every signal printed "sigwait got 61" under a seccomp
// filter), and /proc shows the signal unblocked meanwhile, so look_at could not hold it either.
// Held as it sleeps instead, never sent the signal. Its set is read through /proc (os::read_own: a
// thread on its way out may unmap it; process_vm_readv, a first version's, may be what a seccomp
// filter kills the process for, and fails once the main thread has ended, a review's); where that
// fails, it is sent the signal as before. One read in /proc for a thread in any other state:
// 4,000 threads asleep at exit, the scan by signal 136 -> 169 ms, three runs each, in one sitting
// (`tests/bench/sleeping_threads 4000 seccomp`; 147-150 ms in another, later). See send_or_defer
// for the read before it.
bool held_in_sigwait(Slot& slot) {
  std::uintptr_t values[8];
  if (syscall_of(slot.info.tid, values) != SYS_rt_sigtimedwait) return false;
  const long long runs = runs_of(slot.info.tid);  // then read again: it must not run in between
  if (runs <= 0 || syscall_of(slot.info.tid, values) != SYS_rt_sigtimedwait ||
      values[3] < sizeof(std::uint64_t))
    return false;
  std::uint64_t set = 0;
  if (!os::read_own(&set, reinterpret_cast<const void*>(values[0]), sizeof set) ||
      !((set >> (stop_signal() - 1)) & 1))
    return false;
  return hold_asleep(slot, runs, values);
}

// A thread with the stop signal blocked is not sent it at once: the request stayed pending, and a
// signal thread between two sigwait() calls, or one reading a signalfd, took it as the answer to
// its next wait, a signal the program never sent (a thread in sigwait itself: see
// held_in_sigwait). It is looked at instead (look_at): held if asleep, sent the signal once it has
// unblocked it, or once it has run with it blocked for kDeferMs (a thread that blocks signals
// around its work, unblocking them for microseconds at a time, was seldom seen with the signal
// open and went unstopped, its whole stack a root: a review's; sent at once, it parked at its
// next unblock). Where /proc cannot say, it is sent. False if it could not be sent (errno set).
// The status read, one more for each thread: 4,000 threads asleep at exit, the scan by signal
// 143-161 -> 211-227 ms, three runs each, alternated, 7b712a2 against 88fd1be
// (`tests/bench/sleeping_threads 4000 seccomp`). Only under a seccomp filter or a debugger, where
// ptrace cannot stop threads.
bool send_or_defer(pid_t pid, Slot& slot) {
  std::uint64_t blocked = 0;
  if (blocked_signals(slot.info.tid, &blocked) && (blocked & signal_bit(stop_signal()))) {
    slot.defer_until_ms = now_ms() + kDeferMs;
    slot.phase.store(6, std::memory_order_release);
    return true;
  }
  return held_in_sigwait(slot) || send_stop(pid, slot.info.tid);
}

// Sends the signal to a thread not sent it yet (phase 6), unless something else answered for it.
Look send_deferred(Slot& slot) {
  int deferred = 6;
  if (!slot.phase.compare_exchange_strong(deferred, 0, std::memory_order_acq_rel))
    return deferred == 3 ? Look::kHeld : Look::kWait;
  if (send_stop(getpid(), slot.info.tid)) return Look::kWait;
  const bool gone = errno == ESRCH;
  slot.phase.store(-1, std::memory_order_release);
  return gone ? Look::kEnded : Look::kWait;
}

Look look_at(Slot& slot, std::uint64_t (*ended_at)(pid_t)) {
  const pid_t tid = slot.info.tid;
  const long long runs = runs_of(tid);
  std::uint64_t blocked = 0;
  const bool known = blocked_signals(tid, &blocked);
  const bool deferred = slot.phase.load(std::memory_order_acquire) == 6;
  if (!known || !(blocked & signal_bit(stop_signal()))) {
    // Asleep in sigwait() for the signal (the kernel unblocks what it waits for meanwhile): held
    // there, whether or not it was sent the signal (the interposed sigwait dropped that request,
    // shim/sigwait_api.cc; it waited on unstopped before). One not signalled yet has unblocked
    // the signal (or /proc no longer says): sent it now.
    if (held_in_sigwait(slot)) return Look::kHeld;
    return deferred ? send_deferred(slot) : Look::kWait;
  }
  // A count of 0 says the kernel keeps none (some built without schedstats): not known to be held.
  if (runs > 0) {
    if (blocked == kThreadEndMask && ended_at) {
      const std::uint64_t at = ended_at(tid);
      if (at && started_by(tid, at)) return Look::kEnded;
    }
    std::uintptr_t values[8];
    if (syscall_of(tid, values) >= 0 && hold_asleep(slot, runs, values)) return Look::kHeld;
  }
  // Running with the signal blocked (or not known to be asleep) for kDeferMs: see send_or_defer.
  // Not where a signalfd reads the signal: a busy reader never unblocks it, and read the request
  // (a review's), where unsent it is only a thread not stopped.
  if (deferred && now_ms() >= slot.defer_until_ms &&
      !(g_signalfd_signals.load(std::memory_order_relaxed) & signal_bit(stop_signal())))
    return send_deferred(slot);
  return Look::kWait;
}

// Waits until each thread from `from` on that was sent the signal has parked, ended, or is held
// asleep (see look_at), or until the clock reaches `until` (later while threads still park, and
// `last` at the latest: see kQuietMs). All of them at once, each looked at in
// /proc after kLookMs, then at doubling gaps: waited for one at a time, a hundred threads that
// never park took the whole timeout, and those after them were not looked at.
void await_parking(pid_t pid, std::size_t from, std::uint64_t until, std::uint64_t last,
                   std::uint64_t (*ended_at)(pid_t)) {
  for (std::size_t i = from; i < g_count; ++i) {
    g_slots[i].look_gap_ms = kLookMs;
    g_slots[i].next_look_ms = now_ms() + kLookMs;
  }
  std::size_t parked = g_parked.load(std::memory_order_relaxed);
  std::uint64_t last_parked = now_ms();
  const auto over = [&] {  // see kQuietMs
    const std::uint64_t now = now_ms();
    if (const std::size_t p = g_parked.load(std::memory_order_relaxed); p != parked)
      parked = p, last_parked = now;
    return now >= until && (now >= last_parked + kQuietMs || now >= last);
  };
  std::uint64_t looked = now_ms();
  for (;; sched_yield()) {
    bool waiting = false;
    over();  // brings last_parked up to date
    const std::uint64_t now = now_ms();
    const bool parking = now < last_parked + kLookMs && now < looked + kLooksAtLeastMs;
    if (!parking) looked = now;
    for (std::size_t i = from; i < g_count; ++i) {
      Slot& slot = g_slots[i];
      StoppedThread& th = slot.info;
      const int phase = slot.phase.load(std::memory_order_acquire);
      if (th.gone || phase == 1 || phase == 3 || phase == -1) continue;
      if (!parking && (phase == 0 || phase == 6) && now_ms() >= slot.next_look_ms) {
        // One that ends with the signal pending never parks: not waited for past its end.
        if ((th.gone = !alive(pid, th.tid))) continue;
        const Look look = look_at(slot, ended_at);
        if (look == Look::kHeld || (th.gone = look == Look::kEnded)) continue;
        slot.look_gap_ms = std::min<std::uint64_t>(slot.look_gap_ms * 2, 64);
        slot.next_look_ms = now_ms() + slot.look_gap_ms;
        if (over()) return;  // thousands of them take a while
      }
      waiting = true;
    }
    if (!waiting || over()) return;
  }
}

// Whether the main thread has ended while the process runs on (pthread_exit from main): it
// stays listed, a zombie, until the last thread exits; there is nothing to stop (ptrace would
// refuse it, and a signal would wait for it in vain) and no frame left on its stack.
bool main_thread_ended() {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(getpid()));
  char buf[512];
  return read_start_of(path, buf, sizeof buf) && stat_says_ended(buf);
}

}  // namespace

void StopTheWorld::list_threads() {
  clear_index();  // the last scan's
  g_count = 0;
  g_unlisted = 0;
  const auto self = static_cast<pid_t>(syscall(SYS_gettid));
  g_tracer.parent = getpid();
  g_tracer.scanner = self;
  g_tracer.ended_main = self != getpid() && main_thread_ended() ? getpid() : 0;
  if (!g_tracer_stack) g_tracer_stack = os::map_internal(kTracerStackBytes);
  list_new_threads();  // all of them, with none listed yet
}

std::size_t StopTheWorld::stop(int timeout_ms, std::uint64_t (*ended_at)(pid_t)) {
  g_by_ptrace = stop_by_ptrace(timeout_ms);
  if (g_by_ptrace) {
    std::size_t stopped = 0;
    for (std::size_t i = 0; i < g_count; ++i) stopped += g_slots[i].info.stopped;
    return stopped;
  }
  install_handler();
  g_parked.store(0, std::memory_order_relaxed);
  g_release.store(0, std::memory_order_release);
  g_stopping.store(true, std::memory_order_release);
  pid_t pid = getpid();
  const std::uint64_t deadline = now_ms() + static_cast<std::uint64_t>(timeout_ms);
  std::size_t parked = 0;
  // Threads started since the list was taken are listed and stopped too, until a listing finds
  // none new, as the tracer does (see tracer_main): without it, under a seccomp filter, one that
  // took over the cached stack of a thread that had ended ran through the scan with that stack
  // left out as a dead thread's, and the block it held was called definitely lost (a flaky test's:
  // 2 runs in 100 beside another).
  std::size_t from = 0;
  for (int round = 0; round < kMaxListings; ++round) {
    for (std::size_t i = from; i < g_count; ++i) {
      StoppedThread& th = g_slots[i].info;
      th.stopped = th.gone = false;
      if (!send_or_defer(pid, g_slots[i])) {
        g_slots[i].phase.store(-1);
        th.gone = errno == ESRCH;
      }
    }
    await_parking(pid, from, std::max(deadline, now_ms() + (round ? kRoundMs : 0)),
                  deadline + kMaxOverMs, ended_at);
    for (std::size_t i = from; i < g_count; ++i) {
      StoppedThread& th = g_slots[i].info;
      const int phase = g_slots[i].phase.load(std::memory_order_acquire);
      th.stopped = phase == 1 || phase == 3;
      th.gone = th.gone && !th.stopped;
      parked += th.stopped;
    }
    from = g_count;
    list_new_threads();
    if (g_count == from) break;
  }
  return parked;
}

void StopTheWorld::resume() {
  if (g_by_ptrace) return resume_from_ptrace();
  g_stopping.store(false, std::memory_order_release);  // late arrivals do not park
  g_release.store(1, std::memory_order_release);
  futex(&g_release, FUTEX_WAKE_PRIVATE, 1 << 30);
  // Each parked thread leaves the handler (phase 2) before the slots can be listed again; not
  // waited for once it has ended, nor past kLeaveMs in all: a thread that left the handler
  // another way never says so, and the process hung at exit (a review's: a program's handler
  // that ran in a thread parked in the interposed sigwait left by siglongjmp; SIGCANCEL, which
  // glibc's sigfillset leaves open, could take an asynchronously cancellable one out too; both
  // are blocked there now).
  const pid_t pid = getpid();
  const std::uint64_t until = now_ms() + kLeaveMs;
  for (std::size_t i = 0; i < g_count; ++i)
    if (g_slots[i].info.stopped && g_slots[i].phase.load(std::memory_order_acquire) != 3)
      while (g_slots[i].phase.load(std::memory_order_acquire) != 2 && now_ms() < until &&
             alive(pid, g_slots[i].info.tid))
        sched_yield();
}

std::size_t StopTheWorld::confirm_held() {
  if (g_by_ptrace) return 0;
  std::size_t ran = 0;
  for (std::size_t i = 0; i < g_count; ++i) {
    Slot& slot = g_slots[i];
    if (!slot.info.stopped || slot.phase.load(std::memory_order_acquire) != 3) continue;
    if (runs_of(slot.info.tid) == slot.runs) continue;
    slot.info.stopped = false;  // it ran (or ended, which takes running) while it was read
    ++ran;
  }
  return ran;
}

std::size_t StopTheWorld::count() const { return g_count; }
std::size_t StopTheWorld::gone() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < g_count; ++i) n += g_slots[i].info.gone;
  return n;
}
std::size_t StopTheWorld::held() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < g_count && !g_by_ptrace; ++i)
    n += g_slots[i].info.stopped && g_slots[i].phase.load(std::memory_order_acquire) == 3;
  return n;
}
std::size_t StopTheWorld::unlisted() const { return g_unlisted; }
const StoppedThread& StopTheWorld::thread(std::size_t i) const { return g_slots[i].info; }

bool is_scan_request(int sig, const siginfo_t* info) {
  return sig > 0 && sig == stop_signal() && info && is_stop_request(info);
}

// Parked in the interposed sigwait as the signal's handler parks it, with every signal blocked
// (the handler leaves SIGSETXID open; blocked here, a setuid() in a thread not stopped waits for
// the scan's end, which it reaches without that thread) (a signal it had open ran the
// program's handler on the thread the scan was reading, and one that left by siglongjmp, or an
// asynchronous cancellation, left the thread's slot parked for good, and resume() waited for it
// for ever: a review's). Blocked in a system call, as it is: nothing below its stack pointer is
// the program's (the recorded instruction pointer is ours, not a system call's).
void take_scan_request(siginfo_t* info) {
  const std::uint64_t all = ~std::uint64_t{0};
  std::uint64_t old = 0;
  if (os::kernel_call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all),
                      reinterpret_cast<long>(&old), sizeof all) != 0)
    return;
  ucontext_t uc;
  std::memset(&uc, 0, sizeof uc);
  if (getcontext(&uc) == 0) park(stop_signal(), info, &uc, true);
  os::kernel_call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, sizeof old);
}

void note_signalfd(const sigset_t* mask) {
  std::uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig)
    if (sigismember(mask, sig) == 1) bits |= signal_bit(sig);
  g_signalfd_signals.fetch_or(bits, std::memory_order_relaxed);
}

bool at_system_call(std::uintptr_t ip, std::uintptr_t rax) {
  const auto* code = reinterpret_cast<const unsigned char*>(ip);
  const bool at_syscall = code[0] == 0x0f && code[1] == 0x05;
  const bool past_syscall = ip % os::kPageSize >= 2 && code[-2] == 0x0f && code[-1] == 0x05 &&
                            static_cast<std::intptr_t>(rax) == -EINTR;
  return at_syscall || past_syscall;
}

}  // namespace heapledger::detail
