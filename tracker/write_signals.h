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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
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
// report made the child's output larger (a review's). Each write waits for room first (poll,
// one deadline per wait as above, but longer: a reader that pauses, as `prog 2>&1 | less` does
// until one scrolls, should not cut the report short) and writes no more than goes in without
// blocking: into an empty pipe all it holds, else PIPE_BUF (which goes in whole once poll says
// there is room), and PIPE_BUF into a socket or terminal.
inline constexpr int kBlockingStallMs = 60'000;

// How a write to fd can block for good: not at all (a file, a device, a non-blocking
// descriptor, or one that cannot be told), as a pipe or FIFO, or as a socket or terminal.
enum class StreamKind { kWrittenAsItComes, kPipe, kOtherStream };

inline StreamKind stream_kind(int fd) {
  struct stat st;
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK) || fstat(fd, &st) != 0)
    return StreamKind::kWrittenAsItComes;
  if (S_ISFIFO(st.st_mode)) return StreamKind::kPipe;
  if (S_ISSOCK(st.st_mode) || isatty(fd)) return StreamKind::kOtherStream;
  return StreamKind::kWrittenAsItComes;
}

// How much goes into a blocking stream without blocking, once poll has said it has room.
inline std::size_t room_in(int fd, StreamKind kind) {
  int unread = 0;
  if (kind == StreamKind::kPipe && ioctl(fd, FIONREAD, &unread) == 0 && unread == 0)
    if (const int capacity = fcntl(fd, F_GETPIPE_SZ); capacity > 0)
      return static_cast<std::size_t>(capacity);
  return PIPE_BUF;
}

// The blocking stream whose reader last let a write of ours wait out its deadline: later writes
// to it (the warning that the report was cut, or the report again on a stderr that is the same
// pipe) take only what fits at once, so the exit waits that long once, not once per write.
inline struct {
  std::atomic<dev_t> dev{0};
  std::atomic<ino_t> ino{0};
} g_stalled_stream;

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
  const StreamKind kind = stream_kind(fd);
  if (stall_ms < 0 && stalled_before(fd)) stall_ms = 0;
  if (kind != StreamKind::kWrittenAsItComes && stall_ms < 0) stall_ms = kBlockingStallMs;
  for (std::size_t done = 0; done < size;) {
    std::size_t chunk = size - done;
    if (kind != StreamKind::kWrittenAsItComes) {
      if (!wait_writable(fd, stall_ms)) return note_stalled(fd);
      chunk = std::min(chunk, room_in(fd, kind));
    }
    const ssize_t n = write(fd, data + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_writable(fd, stall_ms >= 0 ? stall_ms : kWriteStallMs)) continue;
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

// stderr as the process started with it (the library points this at its record at start): a
// program started with it closed may have opened a file of its own as fd 2, or put another file
// there since, and none of our lines must go into that.
inline const StreamIdentity* g_stderr_at_start = nullptr;

// A line of the library's own to stderr, printf-style, where the reporter module (and its
// logger) is not there to say it: before it is loaded, or when it cannot be. At most 1 KiB (a
// longer one is cut, and still ends its line if the format did).
// Dropped when fd 2 is no longer the stderr the process started with.
__attribute__((format(printf, 1, 2))) inline void stderr_line(const char* format, ...) {
  if (const StreamIdentity* id = g_stderr_at_start;
      id && (id->closed || (id->known && !same_file(STDERR_FILENO, *id))))
    return;
  char line[1024];
  va_list args;
  va_start(args, format);
  const int n = vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (n <= 0) return;
  std::size_t length = static_cast<std::size_t>(n);
  if (length >= sizeof line) {  // cut: it still ends its line, as the format did
    length = sizeof line - 1;
    if (const std::size_t f = std::strlen(format); f != 0 && format[f - 1] == '\n')
      line[length - 1] = '\n';
  }
  write_all_held(STDERR_FILENO, line, length);
}

}  // namespace heapledger::detail
