// Where the reports go (report_delivery.h): stderr as the process started with it, files written
// whole, turns on a shared stream, %p names. Part of libheapledger_reporter.so.
#include "tracker/report_delivery.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include "tracker/write_signals.h"

namespace heapledger::detail {
namespace {

// stdout and stderr as the process started with them: the tracker's records, which it updates
// (StreamIdentity::set_dev). Until set_streams, not known: fd 1 and 2 as they are.
constinit const StreamIdentity kNotKnown = {};
const StreamIdentity* g_stdout = &kNotKnown;
const StreamIdentity* g_stderr = &kNotKnown;

bool write_all(int fd, std::string_view text);

// Writes everything `produce` gives to fd; false (errno set) at the first write that fails.
bool write_all(int fd, const Producer& produce) {
  bool ok = true;
  int failure = 0;
  produce([&](std::string_view piece) {
    if (ok && !write_all(fd, piece)) ok = false, failure = errno;
  });
  if (!ok) errno = failure;
  return ok;
}

// Bumped as the report is written: other threads that exit meanwhile wait on it (collect.cc),
// and also while a write waits for a slow reader (g_writing_to names its descriptor).
std::atomic<std::uint64_t>* g_progress = nullptr;
std::atomic<int>* g_writing_to = nullptr;
bool g_flush_stdout = false;  // ReportRequest::flush_stdout

// Processes that share a stream (make -j's compilers, each with its report for one pipe or
// terminal) take turns writing their reports to it: a report goes out in many writes, and eight
// processes exiting at once interleaved theirs line by line, some lines cut in two. A turn is an
// abstract socket address named after the stream's inode, which one socket at a time can be
// bound to and which the kernel frees when its holder closes it or dies: nothing is left behind
// in the file system, and no holder that crashed keeps it. A process waits at most 3 s for its
// turn (backing off from 1 ms to 20 ms between tries, and showing progress meanwhile, so that
// its other threads' exits keep waiting for the report), then writes anyway: a holder stuck
// elsewhere must not stop every exit for long. Time while the stream is full (a pipe whose
// reader pauses: `make -j 2>&1 | less` before one scrolls) does not count: the holder is
// writing, as fast as the reader reads, and the waiter's own write would wait as long (it
// wrote after 3 s, into the middle of the holder's report, lines cut in two: a user trial).
// No turn under a seccomp filter (one that kills on
// socket() would kill a program that had exited cleanly), for a stream not identified, or where
// no socket can be made. A child forked while the turn is held closes its copy (else it would
// hold the turn until it exited).
class StreamTurn {
 public:
  // fd: the stream, to tell whether it is full while waiting (-1: not known).
  StreamTurn(std::uint64_t dev, std::uint64_t ino, int fd_for_room = -1) {
    if ((dev == 0 && ino == 0) || !sockets_allowed()) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // sun_path[0] stays 0: the abstract namespace.
    const int len =
        std::snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "heapledger-report-%llx-%llx",
                      static_cast<unsigned long long>(dev), static_cast<unsigned long long>(ino));
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    static std::once_flag forget_in_child;
    std::call_once(forget_in_child, [] { pthread_atfork(nullptr, nullptr, [] { close_held(); }); });
    const auto size =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + static_cast<std::size_t>(len));
    long waited_ms = 0, pause_ms = 1, since_progress_ms = 0;
    while (bind(fd, reinterpret_cast<const sockaddr*>(&addr), size) != 0) {
      if (errno != EADDRINUSE || waited_ms >= kWaitMs) {
        close(fd);
        return;
      }
      const timespec pause{0, pause_ms * 1'000'000};
      nanosleep(&pause, nullptr);
      if (has_room(fd_for_room)) waited_ms += pause_ms;
      since_progress_ms += pause_ms;
      pause_ms = std::min(pause_ms * 2, 20L);
      if (since_progress_ms >= 100 && g_progress) {
        g_progress->fetch_add(1, std::memory_order_relaxed);
        since_progress_ms = 0;
      }
    }
    g_held.store(fd, std::memory_order_release);
  }
  explicit StreamTurn(int fd) : StreamTurn(identity(fd), fd) {}
  ~StreamTurn() { close_held(); }
  StreamTurn(const StreamTurn&) = delete;
  StreamTurn& operator=(const StreamTurn&) = delete;

 private:
  static constexpr long kWaitMs = 3000;
  static inline std::atomic<int> g_held{-1};  // the bound socket, while a report is written
  struct Inode {
    std::uint64_t dev = 0, ino = 0;
  };
  StreamTurn(Inode i, int fd) : StreamTurn(i.dev, i.ino, fd) {}
  // Whether a write to fd would go through now (true where it cannot tell). A non-blocking
  // stream counts as having room: the holder's write gives up on it after a while
  // (write_all_held), and a holder stuck elsewhere would keep a waiter from it for good.
  static bool has_room(int fd) {
    if (fd < 0) return true;
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_NONBLOCK)) return true;
    pollfd p{fd, POLLOUT, 0};
    return poll(&p, 1, 0) != 0;
  }
  static Inode identity(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return {};
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  }
  static void close_held() {
    const int fd = g_held.exchange(-1, std::memory_order_acq_rel);
    if (fd >= 0) close(fd);
  }
  // No seccomp filter on this process (/proc/self/status says "Seccomp: 0"), looked up once.
  static bool sockets_allowed() {
    static const bool allowed = [] {
      FILE* f = std::fopen("/proc/self/status", "re");
      if (!f) return false;
      char line[256];
      bool none = false;
      while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "Seccomp:", 8) == 0) none = std::atoi(line + 8) == 0;
      std::fclose(f);
      return none;
    }();
    return allowed;
  }
};

// Writes to stderr as find_stderr() finds it; dropped where it finds none.
void write_stderr(std::string_view text) {
  const StreamTarget to = find_stderr(g_stderr);
  if (to.fd < 0) return;
  say_why_here(g_stderr, to);
  write_all(to.fd, text);
  if (to.opened) close(to.fd);
}

// spdlog's stderr sink writes to fd 2 whatever it has become; this one goes to write_stderr.
class OriginalStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    write_stderr(std::string_view(line.data(), line.size()));
  }
  void flush_() override {}
};

// nth > 1: "PID-nth" for %p, a name beside the first report of this pid (see deliver).
std::string expand_pid(const char* path, int nth = 1) {
  std::string out;
  for (const char* p = path; *p; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      out += std::to_string(getpid());
      if (nth > 1) out += '-' + std::to_string(nth);
      ++p;
    } else if (p[0] == '%' && p[1] == '%') {  // a literal %, as in LSan's log_path
      out += '%';
      ++p;
    } else {
      out += *p;
    }
  }
  return out;
}

bool write_all(int fd, std::string_view text) {
  if (g_writing_to) g_writing_to->store(fd, std::memory_order_relaxed);
  const bool ok = write_all_held(fd, text.data(), text.size());
  if (g_writing_to) g_writing_to->store(-1, std::memory_order_relaxed);
  return ok;
}

// Something that exists and is not a regular file (/dev/null, a FIFO, a terminal), and anything
// under /dev or /proc (/dev/stderr may lead to the file stderr was redirected to), is appended to
// in place: renaming over it would replace the device node, or the program's own log. A FIFO
// nobody reads fails at once (O_NONBLOCK on open) instead of hanging the exit.
bool write_in_place(const std::string& path, const Producer& text, std::string* error) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return *error = std::strerror(errno), false;
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  StreamTurn turn(fd);
  bool ok = false;
  try {
    ok = write_all(fd, text);
  } catch (...) {  // out of memory: what was written stays, as the program's own output would
    close(fd);
    throw;
  }
  if (!ok) *error = std::strerror(errno);
  close(fd);
  return ok;
}

// Where a symlink leads (through a chain of them), whether or not the file there exists yet.
std::string link_target(const std::string& path) {
  std::string at = path;
  for (int hops = 0; hops < 40; ++hops) {  // the kernel's own limit
    struct stat st;
    char to[PATH_MAX];
    if (lstat(at.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
    const ssize_t n = readlink(at.c_str(), to, sizeof to - 1);
    if (n <= 0) break;
    to[n] = 0;
    const std::size_t slash = at.rfind('/');
    at =
        to[0] == '/' || slash == std::string::npos ? std::string(to) : at.substr(0, slash + 1) + to;
  }
  return at;
}

// The temporary file beside target: its name with a suffix, or a short name of its own where
// that would be longer than a file name or a path may be.
std::string temporary_beside(const std::string& target) {
  const std::size_t slash = target.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : target.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  // The pid and a random word: processes of one pid in different PID namespaces write beside
  // one another too (a review's: eight containers' pid 1s shared one temporary file).
  std::uint32_t word = 0;
  if (getrandom(&word, sizeof word, GRND_NONBLOCK) != sizeof word)
    word = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::string suffix = fmt::format(".tmp.{}.{:08x}", getpid(), word);
  if (name.size() + suffix.size() > NAME_MAX ||
      dir.size() + name.size() + suffix.size() >= PATH_MAX)
    name = ".hl";
  return dir + name + suffix;
}

// The report file exists and may be written, but its directory takes no new file (a directory
// the user cannot write to, with a file made for them in it): written over in place, truncated
// first. Not atomic: a crash in the middle leaves part of it.
bool write_over(const std::string& path, const Producer& text, std::string* error) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return *error = std::strerror(errno), false;
  bool ok = false;
  try {
    ok = write_all(fd, text);
  } catch (...) {  // out of memory: the file is left cut short (no temporary file could be made)
    close(fd);
    throw;
  }
  if (!ok) *error = std::strerror(errno);
  if (close(fd) != 0 && ok) ok = false, *error = std::strerror(errno);
  return ok;
}

// The descriptor a path names (/dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N,
// /proc/PID/fd/N), open or not; else -1.
int named_descriptor(const std::string& path) {
  int fd = -1;
  if (path == "/dev/stdin")
    fd = STDIN_FILENO;
  else if (path == "/dev/stdout")
    fd = STDOUT_FILENO;
  else if (path == "/dev/stderr")
    fd = STDERR_FILENO;
  for (const std::string& prefix : {std::string("/dev/fd/"), std::string("/proc/self/fd/"),
                                    "/proc/" + std::to_string(getpid()) + "/fd/"}) {
    if (fd >= 0 || !path.starts_with(prefix)) continue;
    const std::string digits = path.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return -1;
    fd = std::stoi(digits);
  }
  return fd;
}

// The descriptor a path names, if it names one of this process's own open for writing
// (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, /proc/PID/fd/N); else -1, and
// kNotTheStream for stdout or stderr when the program closed or replaced the one it started
// with: a program started with stdout closed may have opened its own data file as fd 1; and
// kReadOnly for one open only for reading (`json=/dev/stdin` with `< input`: opened again by path
// for writing, the report went into the program's input file; a user trial).
constexpr int kNotTheStream = -2, kReadOnly = -3;
int own_descriptor(const std::string& path) {
  const int fd = named_descriptor(path);
  if (fd == STDOUT_FILENO || fd == STDERR_FILENO) {
    const StreamIdentity& id = fd == STDOUT_FILENO ? *g_stdout : *g_stderr;
    if (id.closed || (id.known && !same_file(fd, id))) return kNotTheStream;
  }
  const int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  if (flags < 0) return -1;  // not open: the path decides (and fails)
  return (flags & O_ACCMODE) != O_RDONLY ? fd : kReadOnly;
}

// Before a report goes where the program's stdout goes (fd 1, or stderr open on the same file: a
// shell's `> out 2>&1`, a pipe, a terminal): what stdio holds for it is written first, so the
// report starts after the program's output so far, not in the middle of a line (to stderr, it came
// before that output: a user trial). Only on the way out through exit(), which writes it anyway:
// after _exit() or a signal the C library drops it, and so must we (with log=/dev/stdout the
// report wrote it). Only if no other thread holds stdout (one may be stopped by the exit scan).
void flush_program_stdout() {
  if (!g_flush_stdout || ftrylockfile(stdout) != 0) return;
  WriteSignalsHeld signals;  // a reader gone: the flush fails here, and again at exit, as plainly
  if (fflush_unlocked(stdout) != 0) signals.write_failed(errno);
  funlockfile(stdout);
}

// Whether descriptors a and b are open on one file.
bool same_stream(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// Through the descriptor fd, at its offset (see write_file_atomically).
bool write_through(int fd, const Producer& text, std::string* error) {
  StreamTurn turn(fd);
  if (fd == STDOUT_FILENO) flush_program_stdout();
  if (write_all(fd, text)) return true;
  return *error = std::strerror(errno), false;
}

// A name of an open file rather than of a file (/dev/stdout, /dev/fd/N, /proc/self/fd/N, /dev/tty).
bool names_open_file(const std::string& path) {
  return path.starts_with("/dev/") || path.starts_with("/proc/");
}

// The standard stream (stdout or stderr) open on the regular file at path, or -1.
int standard_stream_on(const std::string& path) {
  struct stat file;
  if (stat(path.c_str(), &file) != 0 || !S_ISREG(file.st_mode)) return -1;
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == file.st_dev && st.st_ino == file.st_ino) return fd;
  }
  return -1;
}

// The standard stream the process started with on the regular file at path (the program may
// have closed it since), or -1.
int started_stream_on(const std::string& path) {
  struct stat file;
  if (stat(path.c_str(), &file) != 0 || !S_ISREG(file.st_mode)) return -1;
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    const StreamIdentity& id = fd == STDOUT_FILENO ? *g_stdout : *g_stderr;
    if (id.known && id.dev == file.st_dev && id.ino == file.st_ino) return fd;
  }
  return -1;
}

// Why stdout or stderr as the process started with it (find_started_stream) cannot be written.
std::string unreachable_because(int fd, const StreamIdentity& id) {
  const char* name = fd == STDOUT_FILENO ? "stdout" : "stderr";
  if (id.closed) return fmt::format("the program started with {} closed", name);
  const char* kept = id.regular ? "" : " (no copy is kept of a pipe or socket)";
  if (fcntl(fd, F_GETFD) < 0) return fmt::format("the program closed its {}{}", name, kept);
  return fmt::format("the program replaced the {} it started with{}", name, kept);
}

// Through stdout or stderr as the process started with it, wherever find_started_stream finds it
// now: coreutils close stdout at exit, and `log=stdout` (a file or a terminal) sent each one's
// report to stderr (a user trial).
bool write_to_started_stream(int fd, const Producer& text, std::string* error) {
  const StreamIdentity& id = fd == STDOUT_FILENO ? *g_stdout : *g_stderr;
  const StreamTarget to = find_started_stream(fd, id);
  if (to.fd < 0) return *error = unreachable_because(fd, id), false;
  const bool ok = write_through(to.fd, text, error);
  if (to.opened) close(to.fd);
  return ok;
}

// The directory a report file is to go in, made (with its parents) when it is not there: a
// report in a directory each process names with %p (`json=reports/%p/r.json`), or one nobody
// made, went to stderr from every process, the JSON too (a user trial). False, errno as it was,
// if it cannot be made.
bool make_directory_of(const std::string& file) {
  const int before = errno;
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  if (dir.empty() || (!std::filesystem::create_directories(dir, ec) && ec)) {
    errno = before;
    return false;
  }
  return true;
}

// Complete or absent: a regular file is written to a temporary file beside it, then renamed over
// it; through a symlink (even one to a file not there yet), the file it points to is replaced,
// not the link. Where the directory refuses the temporary file, see write_over. A path naming one
// of the process's descriptors is written through that descriptor, at its offset: opened again
// by path, a file the program's stdout was redirected to (`json=/dev/stdout`, `> out`) got the
// report at its end through a description of its own, and the program's output flushed after
// the report, at the offset of the program's description, wrote over the report's start. So is
// the file stdout or stderr is open on, however it is named: renamed over, it took the program's
// output with it (`log=app.log`, `>> app.log 2>&1`: a user trial).
bool write_file_atomically(const std::string& path, const Producer& text, std::string* error) {
  const int own = own_descriptor(path);
  if (own >= 0) return write_through(own, text, error);
  if (own == kNotTheStream) return write_to_started_stream(named_descriptor(path), text, error);
  if (own == kReadOnly) return *error = "open only for reading", false;
  if (const int fd = standard_stream_on(path); fd >= 0) return write_through(fd, text, error);
  if (const int fd = started_stream_on(path); fd >= 0)
    return write_to_started_stream(fd, text, error);
  struct stat st;
  if (names_open_file(path) || (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)))
    return write_in_place(path, text, error);
  const std::string target = link_target(path);
  std::string tmp = temporary_beside(target);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT && make_directory_of(target))
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int open_error = errno;  // what to say if it failed (not the stat's below: a review)
  if (fd < 0 && (open_error == EACCES || open_error == EPERM) && stat(target.c_str(), &st) == 0 &&
      S_ISREG(st.st_mode))
    return write_over(target, text, error);
  if (fd < 0) return *error = std::strerror(open_error), false;
  bool ok = false;
  try {
    ok = write_all(fd, text);
  } catch (...) {  // out of memory: no unfinished report under the name, nor a file beside it
    close(fd);
    unlink(tmp.c_str());
    throw;
  }
  if (!ok) *error = std::strerror(errno);
  if (close(fd) != 0 && ok) ok = false, *error = std::strerror(errno);
  if (ok && rename(tmp.c_str(), target.c_str()) != 0) ok = false, *error = std::strerror(errno);
  if (!ok) unlink(tmp.c_str());
  return ok;
}

// Whether the regular file at path, one write_file_atomically replaces (not a stream this process
// writes into: its stdout's file, /dev/stdout, which the program's own output made newer), was
// written after began (a time on CLOCK_REALTIME).
bool replaced_file_written_since(const std::string& path, const timespec& began) {
  struct stat st;
  if (names_open_file(path) || standard_stream_on(path) >= 0 || started_stream_on(path) >= 0)
    return false;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return st.st_mtim.tv_sec > began.tv_sec ||
         (st.st_mtim.tv_sec == began.tv_sec && st.st_mtim.tv_nsec > began.tv_nsec);
}

// When this process began, on CLOCK_REALTIME: its exec, or the fork that made it.
timespec began(const ProcessInfo& p) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const double ago_ms = p.duration_ms - p.forked_ms.value_or(0);
  const auto ago_ns = static_cast<std::int64_t>(std::max(0.0, ago_ms) * 1e6);
  std::int64_t ns = now.tv_sec * std::int64_t{1'000'000'000} + now.tv_nsec - ago_ns;
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// The name for a report of this pid beside one another process of the same pid wrote since
// `since`: %p as "PID-2" (then -3, ...), as the first one not written since.
std::string beside(const char* target, const timespec& since) {
  std::string name;
  for (int n = 2; n < 1000; ++n) {
    name = expand_pid(target, n);
    if (!replaced_file_written_since(name, since)) break;
  }
  return name;
}

// Held while a report named with %p chooses its file and writes it: processes of one pid in
// different PID namespaces (containers sharing a directory, each its own pid 1) exiting together
// each found the name free, and one report replaced the other (a review's). A lock on the
// directory where names differ by pid (flock: it holds across namespaces), waited for at most 3 s
// (a holder stopped for good must not keep the others' reports from being written). Not under a
// seccomp filter, which may kill on a system call it does not expect (as for the stream turns).
class PidNameLock {
 public:
  // target: a report path with %p (else no lock is taken).
  explicit PidNameLock(const char* target) {
    const char* at = std::strstr(target, "%p");
    if (!at || (g_sandboxed && g_sandboxed())) return;
    std::string dir(target, static_cast<std::size_t>(at - target));
    const std::size_t slash = dir.rfind('/');
    dir = slash == std::string::npos ? "."
          : slash == 0               ? "/"
                                     : expand_pid(dir.substr(0, slash).c_str());
    fd_ = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int waited_ms = 0; fd_ >= 0; waited_ms += 2) {
      if (flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
      if ((errno != EWOULDBLOCK && errno != EINTR) || waited_ms >= 3000) break;
      const timespec pause{0, 2'000'000};
      nanosleep(&pause, nullptr);
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  ~PidNameLock() { release(); }
  void release() {
    if (fd_ >= 0) close(fd_);  // and the lock with it
    fd_ = -1;
  }
  PidNameLock(const PidNameLock&) = delete;
  PidNameLock& operator=(const PidNameLock&) = delete;

 private:
  int fd_ = -1;
};

// "pid 5223 (postgres)": which process a warning is about, where many share one stderr (a
// script's, whose every process warned alike: a user trial).
std::string who(const ProcessInfo& p) {
  const std::size_t slash = p.exe.rfind('/');
  const std::string name = slash == std::string::npos ? p.exe : p.exe.substr(slash + 1);
  return name.empty() ? fmt::format("pid {}", p.pid) : fmt::format("pid {} ({})", p.pid, name);
}

}  // namespace

void set_streams(const StreamIdentity* out, const StreamIdentity* err, bool (*sandboxed)()) {
  g_stdout = out;
  g_stderr = err;
  g_sandboxed = sandboxed;
}

void begin_delivery(std::atomic<std::uint64_t>* progress, std::atomic<int>* writing_to,
                    bool flush_stdout) {
  g_progress = progress;
  g_writing_to = writing_to;
  g_flush_stdout = flush_stdout;
}

// Never destroyed: warnings can come after static destructors.
spdlog::logger& diagnostics() {
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger("heapledger", std::make_shared<OriginalStderrSink>());
    l->set_pattern("heapledger: %v");
    return l;
  }();
  return *logger;
}

void warn(const char* line) { diagnostics().warn("warning: {}", line); }
void say(const char* line) { diagnostics().info("{}", line); }

// A report that cannot go where it was asked to goes to stderr, after a one-line warning. A file
// named without %p that another process wrote while this one ran (the compilers of `make` under
// `heapledger run --log r.txt`) is replaced, and says so: each of 43 processes wrote over the last
// one's report without a word, and one report was left (a user trial).
void deliver(const char* what, const char* target, const ProcessInfo& process,
             const Producer& text) {
  const auto to_stderr = [&text] {
    const StreamTarget to = find_stderr(g_stderr);
    if (to.fd < 0) return;
    {
      StreamTurn turn(to.fd);
      if (same_stream(to.fd, STDOUT_FILENO)) flush_program_stdout();
      say_why_here(g_stderr, to);
      text([&to](std::string_view piece) { write_all(to.fd, piece); });
    }
    if (to.opened) close(to.fd);
  };
  if (!std::strcmp(target, "stderr")) return to_stderr();
  std::string path = expand_pid(target);
  // /dev/stderr when fd 2 is not the stderr the process started with: stderr as log=stderr finds
  // it, not a warning that it goes "to stderr" and then the same file.
  if (named_descriptor(path) == STDERR_FILENO && own_descriptor(path) == kNotTheStream)
    return to_stderr();
  std::string error;
  const bool with_pid = std::strstr(target, "%p") != nullptr;
  // When this process began, taken before the lock: it is now less the run's duration, which a
  // wait for the lock would move later, and siblings' files written meanwhile looked an earlier
  // run's, to be replaced (a review's: 16 pid-1 siblings lost two or three reports).
  const timespec since = began(process);
  PidNameLock lock(target);
  const bool shared = replaced_file_written_since(path, since);
  // Named for this pid, and written while this process ran: by another process of the same pid
  // in another PID namespace (containers sharing a directory, each its own pid 1). Replaced, its
  // report was lost without a word (a user trial's `unshare --pid`): this one goes beside it.
  const std::string taken = with_pid && shared ? path : std::string();
  if (!taken.empty()) path = beside(target, since);
  const bool written = write_file_atomically(path, text, &error);
  lock.release();
  if (written) {
    if (!taken.empty())
      diagnostics().warn(
          "warning: {} holds the report of another process with this pid (in another PID "
          "namespace) that ran meanwhile; this {} report is {}",
          taken, what, path);
    else if (shared)
      diagnostics().warn(
          "warning: another process wrote {} while this one ran, and this {} report replaced "
          "its; a %p in the path gives each process a file of its own",
          path, what);
    return;
  }
  if (own_descriptor(path) == STDERR_FILENO) return;  // it was stderr: no second try there
  // Under a seccomp filter the error is the filter's (man-db's helpers: openat with O_CREAT
  // refused with ENOSYS, "Function not implemented", a user trial's): it says so.
  const char* why =
      g_sandboxed && g_sandboxed() ? " (the process runs under a seccomp filter)" : "";
  diagnostics().warn("warning: cannot write the {} report of {} to {}: {}{}; writing it to stderr",
                     what, who(process), path, error, why);
  to_stderr();
}

}  // namespace heapledger::detail
