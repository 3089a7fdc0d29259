// Writes of heapledger's own (reports, and the few lines the library prints itself) that must
// not change how the program ends. Header-only: the library and its reporter module both use it.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "tracker/runtime_api.h"

namespace heapledger::detail {

// A write of ours must not end the program, nor leave it a signal it would not have had: under
// a file size limit (`ulimit -f`, setrlimit(RLIMIT_FSIZE): sandboxes and judges set one) a write
// past it raises SIGXFSZ, and a write to a pipe whose reader has gone (`prog 2>&1 | head -1`)
// raises SIGPIPE; the default action of each ends the process. The report's write ended programs
// that had exited normally (status 153, reportless, its temporary file left behind; and 141 with
// stderr on a closed pipe). So each write is made with both blocked in this thread: it fails
// (EFBIG, EPIPE) instead, the report goes elsewhere or nowhere as for any place it cannot be
// written to, and the signal the failed write raised is taken off the thread (not one that was
// pending before: that one is the program's) before the mask is restored.
class WriteSignalsHeld {
 public:
  WriteSignalsHeld() {
    sigemptyset(&held_);
    sigaddset(&held_, SIGPIPE);
    sigaddset(&held_, SIGXFSZ);
    blocked_ = pthread_sigmask(SIG_BLOCK, &held_, &before_) == 0;
    if (!blocked_ || sigpending(&pending_before_) != 0) sigfillset(&pending_before_);  // take none
  }
  ~WriteSignalsHeld() {
    if (blocked_) pthread_sigmask(SIG_SETMASK, &before_, nullptr);
  }
  // After a write failed with `error`: the signal it raised, if any, is not left pending.
  void write_failed(int error) {
    const int sig = error == EPIPE ? SIGPIPE : error == EFBIG ? SIGXFSZ : 0;
    if (sig == 0 || sigismember(&pending_before_, sig)) return;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    const timespec none{0, 0};
    sigtimedwait(&one, nullptr, &none);
    errno = error;
  }
  WriteSignalsHeld(const WriteSignalsHeld&) = delete;
  WriteSignalsHeld& operator=(const WriteSignalsHeld&) = delete;

 private:
  sigset_t held_, before_, pending_before_;
  bool blocked_ = false;
};

// A descriptor the program made non-blocking (O_NONBLOCK on its stdout or stderr, as event
// loops do) takes the report as a blocking one would: the write waits while the reader is slow.
// Before, the report stopped at the pipe's 64 KiB, cut mid-line, and a JSON report to stdout was
// cut and then written again whole to stderr (a user trial). Given up after kWriteStallMs with
// nothing written: a reader that waits for the process to end before it reads would otherwise
// hang the exit for good, which a program that chose not to block never did.
inline constexpr int kWriteStallMs = 10'000;

// One deadline for the whole wait: a signal every few seconds (a program's interval timer)
// restarted a full wait each time, and the exit never ended (a review's).
inline bool wait_writable(int fd, int stall_ms) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long deadline_ms = now.tv_sec * 1000LL + now.tv_nsec / 1'000'000 + stall_ms;
  for (;;) {  // polled once at least, even with no time to wait
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long long left =
        std::max(0LL, deadline_ms - (now.tv_sec * 1000LL + now.tv_nsec / 1'000'000));
    pollfd p{fd, POLLOUT, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR && left > 0) continue;
    return n > 0;
  }
}

// A blocking stream that is not a file (a pipe, a FIFO, a socket, a terminal) is not written to
// blindly either: a write into a pipe nobody reads waits for good, and a parent that waits for
// the process to end before it reads its stderr (`p = Popen(..., stderr=PIPE); p.wait()`, a
// pattern that works while the child writes less than a pipe holds) waited for good once the
// report made the child's output larger (a review's). So such a stream is written without
// blocking too, and a full one waited for with a deadline as above, but longer: a reader that
// pauses, as `prog 2>&1 | less` does until one scrolls, should not cut the report short.
inline constexpr int kBlockingStallMs = 60'000;

// Whether the process is under a seccomp filter (or may be: no_new_privs), where a system call
// a plain write does not make (open, fcntl, ioctl, sendto, poll) could kill it: writes are then
// plain, as they were. Set by each module (the library: os::sandboxed; the reporter: what the
// library hands it); until then, taken as yes.
inline bool (*g_sandboxed)() = nullptr;

// Writes to a descriptor without ever blocking in write(2): a pipe, FIFO or terminal through a
// description of its own opened non-blocking (/proc/self/fd/N; O_NONBLOCK set on the program's
// description would change it for the program and every process sharing it), a socket with
// MSG_DONTWAIT. Where the stream cannot be opened again (no /proc), it waits for room with poll
// and writes PIPE_BUF at a time, which can still block: on a terminal with less room than that,
// or a pipe another writer fills in between (a review's; poll then PIPE_BUF was all there was
// first, and a terminal nobody read hung the exit for good). A file, a device or a descriptor
// already non-blocking is written as it comes, and so is everything in a sandbox.
class StreamWriter {
 public:
  explicit StreamWriter(int fd) : fd_(fd) {
    if (!g_sandboxed || g_sandboxed()) return;
    struct stat st;
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_NONBLOCK) || fstat(fd, &st) != 0) return;
    if (S_ISSOCK(st.st_mode)) {
      how_ = kSend;
      return;
    }
    if (!S_ISFIFO(st.st_mode) && !isatty(fd)) return;
    fifo_ = S_ISFIFO(st.st_mode);
    how_ = kPolled;
    char path[32];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    own_ = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat again;
    if (own_ >= 0 && fstat(own_, &again) == 0 && again.st_dev == st.st_dev &&
        again.st_ino == st.st_ino)
      how_ = kReopened;
    else if (own_ >= 0)
      close(own_), own_ = -1;
  }
  ~StreamWriter() {
    if (own_ >= 0) close(own_);
  }
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // A stream whose reader can keep a write waiting (the longer deadline applies).
  bool stream() const { return how_ != kAsItComes; }
  // Whether to wait for room before each write (the fallback).
  bool polled() const { return how_ == kPolled; }
  // write(2)'s answer for as much of data as goes in now.
  ssize_t write_some(const char* data, std::size_t size) const {
    switch (how_) {
      case kReopened:
        return write(own_, data, size);
      case kSend:
        return send(fd_, data, size, MSG_DONTWAIT);
      case kPolled:
        return write(fd_, data, std::min<std::size_t>(size, PIPE_BUF));
      case kAsItComes:
        break;
    }
    return write(fd_, data, size);
  }

  // A pipe found full is made larger, once a writer, to hold what is in it and `more` bytes too,
  // up to kPipeMost: true if it now holds more. A parent that waits for its child before it
  // reads the child's stderr pipe (`p = Popen(..., stderr=PIPE); p.wait()`) waited out each
  // process's deadline in turn once the reports filled the pipe's 64 KiB: a script's 185
  // processes under it never ended (a user trial). A larger pipe costs nothing until it is filled.
  bool grow_pipe(std::size_t more) {
    if (grown_ || !fifo_ || how_ != kReopened) return false;
    grown_ = true;
    const int now = fcntl(own_, F_GETPIPE_SZ);
    int queued = 0;
    if (now <= 0 || ioctl(own_, FIONREAD, &queued) != 0 || queued < 0) return false;
    // At least twice as large: a pipe is full when its slots are, with less than its size in
    // them (many small writes of many processes: 43,956 bytes filled a 64 KiB pipe).
    const auto size = static_cast<std::size_t>(now);
    const std::size_t want = std::min(
        kPipeMost, std::max(2 * size, std::bit_ceil(static_cast<std::size_t>(queued) + more)));
    return want > size && fcntl(own_, F_SETPIPE_SZ, static_cast<int>(want)) > now;
  }

 private:
  // The most an unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size).
  static constexpr std::size_t kPipeMost = std::size_t{1} << 20;
  enum How { kAsItComes, kReopened, kSend, kPolled };
  int fd_;
  int own_ = -1;
  How how_ = kAsItComes;
  bool fifo_ = false;
  bool grown_ = false;
};

// The stream whose reader last let a write of ours wait out its deadline: later writes to it
// (the warning that the report was cut, or the report again on a stderr that is the same pipe)
// take only what fits at once, so the exit waits that long once, not once per write. One per
// module (the library's own lines, the reporter's reports).
struct StalledStream {
  std::atomic<dev_t> dev{0};
  std::atomic<ino_t> ino{0};
};
inline StalledStream g_stalled_stream;

inline bool stalled_before(int fd) {
  struct stat st;
  return g_stalled_stream.ino.load() != 0 && fstat(fd, &st) == 0 &&
         st.st_ino == g_stalled_stream.ino.load() && st.st_dev == g_stalled_stream.dev.load();
}

// Remembers fd's stream as the one that stalled; false, errno EAGAIN.
inline bool note_stalled(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) {
    g_stalled_stream.dev.store(st.st_dev);
    g_stalled_stream.ino.store(st.st_ino);
  }
  errno = EAGAIN;
  return false;
}

// Writes all of data to fd with SIGPIPE and SIGXFSZ held; false (errno set) at the first write
// that fails, or (EAGAIN) when the stream takes nothing for stall_ms (by default kWriteStallMs
// for a non-blocking descriptor, kBlockingStallMs for a blocking stream, none for the one that
// stalled before).
inline bool write_all_held(int fd, const char* data, std::size_t size, int stall_ms = -1) {
  WriteSignalsHeld signals;
  StreamWriter out(fd);
  if (stall_ms < 0 && stalled_before(fd)) stall_ms = 0;
  if (stall_ms < 0) stall_ms = out.stream() ? kBlockingStallMs : kWriteStallMs;
  for (std::size_t done = 0; done < size;) {
    if (out.polled() && !wait_writable(fd, stall_ms)) return note_stalled(fd);
    const ssize_t n = out.write_some(data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (out.grow_pipe(size - done) || wait_writable(fd, stall_ms)) continue;
      return note_stalled(fd);
    }
    if (n < 0) signals.write_failed(errno);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Whether fd is the file id recorded (same device and inode).
inline bool same_file(int fd, const StreamIdentity& id) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_dev == id.dev && st.st_ino == id.ino;
}

// A file's birth time in nanoseconds, 0 where the file system does not keep one: with the device
// and inode it tells one file from another that took the inode number of a file since removed.
inline std::uint64_t birth_ns(int fd) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) != 0 || !(stx.stx_mask & STATX_BTIME))
    return 0;
  return static_cast<std::uint64_t>(stx.stx_btime.tv_sec) * 1'000'000'000u + stx.stx_btime.tv_nsec;
}

// Whether fd 2 now is the file the program itself put there (StreamIdentity::set_dev), open for
// writing: the same file (device, inode and birth time: a log the program removed gave its inode
// number to the data file it opened next on fd 2, a review's), and a file, a pipe or a terminal.
// Not a socket: a forking server's child with its client's connection on fd 2 would send the
// client its report.
inline bool set_by_program(const StreamIdentity& id) {
  const std::uint64_t ino = id.set_ino.load(std::memory_order_acquire);
  const std::uint64_t dev = id.set_dev.load(std::memory_order_relaxed);
  const std::uint64_t born = id.set_birth_ns.load(std::memory_order_relaxed);
  if (ino == 0 || id.set_ino.load(std::memory_order_acquire) != ino) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0 || st.st_dev != dev || st.st_ino != ino ||
      !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)))
    return false;
  if (born != 0 && birth_ns(STDERR_FILENO) != born) return false;
  const int flags = fcntl(STDERR_FILENO, F_GETFL);
  return flags >= 0 && (flags & O_ACCMODE) != O_RDONLY;
}

// Where our lines for stdout or stderr go now. fd -1: nowhere.
struct StreamTarget {
  int fd = -1;
  bool opened = false;          // by path, here: the caller closes it once written
  bool set_by_program = false;  // not the stderr the process started with (say_why_here)
};

// fd (stdout or stderr) as the process started with it (id): fd while it still is that file,
// else the same file through the copy kept of it, or the same terminal reopened by path. Never
// whatever else the descriptor has become: a program started with it closed may have opened its
// data file there (a user trial).
inline StreamTarget find_started_stream(int fd, const StreamIdentity& id) {
  if (id.closed) return {};
  if (!id.known || same_file(fd, id)) return {fd};
  if (id.fd >= 0 && same_file(id.fd, id)) return {id.fd};  // the program may have reused it
  if (id.path[0] == '/') {
    const int reopened = open(id.path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (reopened >= 0 && same_file(reopened, id)) return {reopened, true};
    if (reopened >= 0) close(reopened);
  }
  return {};
}

// stderr as the process started with it (id; null: not known yet, fd 2 as it is), as
// find_started_stream finds it. Else the file the program put on fd 2 itself (dup2, freopen): a
// server's log, when the stderr it started with was a pipe, of which no copy is kept
// (PostgreSQL's processes onto their log collector's pipe: a user trial lost every report but the
// collector's).
inline StreamTarget find_stderr(const StreamIdentity* id) {
  if (!id) return {STDERR_FILENO};
  if (const StreamTarget to = find_started_stream(STDERR_FILENO, *id); to.fd >= 0) return to;
  if (set_by_program(*id)) return {STDERR_FILENO, false, true};
  return {};
}

// Before the first of our lines that goes to a stderr the program put there itself, one that says
// why it is there, once a process (a forked child says it again): the text is not the program's
// own, and its reader may look for it where the process's output went first.
inline void say_why_here(const StreamIdentity* id, const StreamTarget& to) {
  if (!id || !to.set_by_program || id->said_why.exchange(true)) return;
  char line[700];
  const int n = std::snprintf(line, sizeof line,
                              "heapledger: the stderr this process started with (%s) cannot be "
                              "reached; writing to the one the program put in its place\n",
                              id->closed ? "closed" : id->path);
  if (n > 0 && static_cast<std::size_t>(n) < sizeof line)
    write_all_held(to.fd, line, static_cast<std::size_t>(n));
}

// stderr as the process started with it: the library points this at its record at start.
inline const StreamIdentity* g_stderr_at_start = nullptr;

// A line of the library's own, formatted: at most 1 KiB (a longer one is cut, and still ends its
// line if the format did). Returns its length, 0 if there is none.
using OwnLine = char[1024];
inline std::size_t format_line(OwnLine& line, const char* format, va_list args) {
  const int n = vsnprintf(line, sizeof line, format, args);
  if (n <= 0) return 0;
  std::size_t length = static_cast<std::size_t>(n);
  if (length >= sizeof line) {  // cut: it still ends its line, as the format did
    length = sizeof line - 1;
    if (const std::size_t f = std::strlen(format); f != 0 && format[f - 1] == '\n')
      line[length - 1] = '\n';
  }
  return length;
}

// A line of the library's own to stderr, printf-style, where the reporter module (and its
// logger) is not there to say it: before it is loaded, or when it cannot be. Goes where
// find_stderr() finds stderr; dropped where it finds none.
__attribute__((format(printf, 1, 2))) inline void stderr_line(const char* format, ...) {
  OwnLine line;
  va_list args;
  va_start(args, format);
  const std::size_t length = format_line(line, format, args);
  va_end(args);
  if (!length) return;
  const StreamTarget to = find_stderr(g_stderr_at_start);
  if (to.fd < 0) return;
  say_why_here(g_stderr_at_start, to);
  write_all_held(to.fd, line, length);
  if (to.opened) close(to.fd);
}

}  // namespace heapledger::detail
