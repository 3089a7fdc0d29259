// The library's own stderr lines (tracker/write_signals.h): whole lines, cut at 1 KiB; and
// whole writes to a descriptor the program made non-blocking.
#include "tracker/write_signals.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace heapledger::detail {
namespace {

// What stderr_line(args...) wrote to fd 2 (a pipe of its own); `meanwhile` runs first, with fd 2
// that pipe.
template <typename... Args>
std::string written_with(void (*meanwhile)(), const char* format, Args... args) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  if (meanwhile) meanwhile();
  stderr_line(format, args...);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  return out;
}

template <typename... Args>
std::string written(const char* format, Args... args) {
  return written_with(nullptr, format, args...);
}

TEST(StderrLine, WritesTheLineAsFormatted) {
  EXPECT_EQ(written("heapledger: %s %d\n", "one", 2), "heapledger: one 2\n");
}

TEST(StderrLine, ALineTooLongIsCutAndStillEndsItsLine) {
  const std::string long_word(3000, 'x');
  const std::string out = written("heapledger: %s\n", long_word.c_str());
  ASSERT_EQ(out.size(), 1023u);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line
  EXPECT_EQ(out.compare(0, 12, "heapledger: "), 0);
}

TEST(StderrLine, AFormatWithoutANewlineGetsNone) {
  const std::string long_word(3000, 'y');
  const std::string out = written("%s", long_word.c_str());
  EXPECT_EQ(out, std::string(1023, 'y'));
}

// A process whose stderr was a pipe, now gone: fd 2 is another one. The line goes there only
// once the program is known to have put it there itself (dup2, freopen: StreamIdentity::set_dev),
// after one line that says why, once; else it might be a data file that landed on the free
// descriptor.
StreamIdentity g_started = {};

// Notes fd 2 as the program's own (what tracker::note_stderr_set does after a dup2 onto it).
void note_fd2() {
  struct stat now;
  ASSERT_EQ(fstat(STDERR_FILENO, &now), 0);
  g_started.set_dev.store(now.st_dev);
  g_started.set_birth_ns.store(birth_ns(STDERR_FILENO));
  g_started.set_ino.store(now.st_ino);
}

// g_started: a stderr that was a pipe, closed since.
void start_on_a_gone_pipe() {
  int gone[2];
  ASSERT_EQ(pipe2(gone, O_CLOEXEC), 0);
  struct stat st;
  ASSERT_EQ(fstat(gone[1], &st), 0);
  close(gone[0]);
  close(gone[1]);
  g_started.known = true;
  g_started.closed = false;
  g_started.dev = st.st_dev;
  g_started.ino = st.st_ino;
  std::snprintf(g_started.path, sizeof g_started.path, "pipe:[%llu]",
                static_cast<unsigned long long>(st.st_ino));
  g_started.fd = -1;
  g_started.set_ino.store(0);
  g_started.said_why.store(false);
  g_stderr_at_start = &g_started;
}

TEST(StderrLine, GoesToAReplacedStderrOnlyIfTheProgramPutItThere) {
  start_on_a_gone_pipe();
  EXPECT_EQ(written("heapledger: dropped\n"), "");
  const std::string why = std::string("heapledger: the stderr this process started with (") +
                          g_started.path +
                          ") cannot be reached; writing to the one the program put in its place\n";
  EXPECT_EQ(written_with(note_fd2, "heapledger: %s\n", "there"), why + "heapledger: there\n");
  EXPECT_EQ(written_with(note_fd2, "heapledger: %s\n", "again"), "heapledger: again\n");  // once
  // Noted, then replaced again by a file not noted: dropped.
  EXPECT_EQ(written("heapledger: dropped again\n"), "");
  g_started.closed = true;  // started without a stderr, then one put there: that one gets it
  EXPECT_EQ(written_with(note_fd2, "heapledger: %s\n", "closed"), "heapledger: closed\n");
  g_stderr_at_start = nullptr;
}

// The same file by device and inode, but born at another time: the log the program put on fd 2
// was removed and its inode number went to the data file opened next on fd 2 (a review's, on
// ext4). Here the birth time noted is made another one's.
TEST(StderrLine, AFileThatTookTheInodeOfTheProgramsLogGetsNothing) {
  start_on_a_gone_pipe();
  char path[] = "/tmp/hl_log_XXXXXX";
  const int log = mkstemp(path);
  ASSERT_GE(log, 0);
  unlink(path);
  const std::uint64_t born = birth_ns(log);
  if (born == 0) GTEST_SKIP() << "no birth times on /tmp's file system";
  const int saved = dup(STDERR_FILENO);
  dup2(log, STDERR_FILENO);
  note_fd2();
  g_started.set_birth_ns.store(born + 1);
  stderr_line("heapledger: %s\n", "not here");
  g_started.set_birth_ns.store(born);
  stderr_line("heapledger: %s\n", "here");
  dup2(saved, STDERR_FILENO);
  close(saved);
  char buf[512] = {};
  ASSERT_GT(pread(log, buf, sizeof buf - 1, 0), 0);
  close(log);
  const std::string text = buf;
  EXPECT_EQ(text.find("not here"), std::string::npos) << text;
  EXPECT_NE(text.find("heapledger: here\n"), std::string::npos) << text;
  g_stderr_at_start = nullptr;
}

// A socket the program put on fd 2 (a forking server's child, with its client's connection
// there) gets nothing: the client would get the report.
TEST(StderrLine, ASocketTheProgramPutOnFd2GetsNothing) {
  start_on_a_gone_pipe();
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const int saved = dup(STDERR_FILENO);
  dup2(pair[1], STDERR_FILENO);
  note_fd2();
  stderr_line("heapledger: %s\n", "to a client");
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(pair[1]);
  char buf[256];
  EXPECT_EQ(read(pair[0], buf, sizeof buf), 0);  // nothing before the end
  close(pair[0]);
  g_stderr_at_start = nullptr;
}

// A stderr that was a file is written through the copy kept of it, even where the program put
// another file on fd 2 since: its file got the line, with none in the file stderr was (a review's:
// the on_error=abort line went into the program's log).
TEST(StderrLine, TheKeptCopyOfTheStartingStderrWinsOverTheProgramsFile) {
  char path[] = "/tmp/hl_stderr_XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  struct stat st;
  ASSERT_EQ(fstat(file, &st), 0);
  start_on_a_gone_pipe();
  g_started.dev = st.st_dev;
  g_started.ino = st.st_ino;
  g_started.fd = file;
  EXPECT_EQ(written_with(note_fd2, "heapledger: %s\n", "kept"), "");
  char buf[256] = {};
  EXPECT_EQ(pread(file, buf, sizeof buf - 1, 0), 17);
  EXPECT_STREQ(buf, "heapledger: kept\n");
  close(file);
  g_stderr_at_start = nullptr;
}

TEST(WriteAllHeld, ANonBlockingPipeWithASlowReaderGetsEveryByte) {
  // 1 MiB into a pipe of 64 KiB whose reader starts 200 ms late: a write that gave up at the
  // first EAGAIN left a report cut at 64 KiB.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  const std::string text(1 << 20, 'r');
  std::size_t got = 0;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    fcntl(fds[0], F_SETFL, 0);  // the reader blocks; only the writer's end is non-blocking
    char buf[65536];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got += static_cast<std::size_t>(n);
  });
  const bool ok = write_all_held(fds[1], text.data(), text.size());
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_TRUE(ok);
  EXPECT_EQ(got, text.size());
}

TEST(WriteAllHeld, ANonBlockingPipeNobodyReadsIsGivenUpOnDespiteSignals) {
  // A pipe nobody reads, and a signal every 50 ms (an interval timer of the program's): the wait
  // for room ends at its deadline. Each signal restarted it from zero, and the exit never ended
  // (a review's).
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  struct sigaction tick {};
  tick.sa_handler = [](int) {};
  sigemptyset(&tick.sa_mask);
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGALRM, &tick, &before), 0);
  itimerval every{{0, 50'000}, {0, 50'000}};
  ASSERT_EQ(setitimer(ITIMER_REAL, &every, nullptr), 0);
  const std::string text(1 << 20, 'n');
  const auto start = std::chrono::steady_clock::now();
  const bool ok = write_all_held(fds[1], text.data(), text.size(), 300);
  const auto took = std::chrono::steady_clock::now() - start;
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &before, nullptr);
  close(fds[0]);
  close(fds[1]);
  EXPECT_FALSE(ok);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// The library says whether the process is sandboxed; this test process is not.
class Unsandboxed : public ::testing::Test {
 protected:
  void SetUp() override {
    g_sandboxed = [] { return false; };
  }
  void TearDown() override { g_sandboxed = nullptr; }
};

TEST_F(Unsandboxed, ABlockingPipeWithASlowReaderGetsEveryByte) {
  // Written in pieces that fit (poll first), the report still comes whole to a reader that
  // starts late.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const std::string text((1 << 20) + 12345, 'b');
  std::string got;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    char buf[65536];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      got.append(buf, static_cast<std::size_t>(n));
  });
  const bool ok = write_all_held(fds[1], text.data(), text.size());
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_TRUE(ok);
  EXPECT_EQ(got, text);
}

TEST_F(Unsandboxed, ABlockingPipeNobodyReadsIsGivenUpOnOnce) {
  // A parent that waits for the process to end before it reads its stderr: a blocking write of
  // more than the pipe holds waited for good. Now it stops after its deadline (here 300 ms),
  // with what fit written, and the next write to that pipe waits no more.
  // (More than the pipe holds when made as large as it is made: see the next test.)
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const std::string text(4 << 20, 's');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(write_all_held(fds[1], text.data(), text.size(), 300));
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  int unread = 0;
  ASSERT_EQ(ioctl(fds[0], FIONREAD, &unread), 0);
  EXPECT_EQ(unread, fcntl(fds[1], F_GETPIPE_SZ));  // what fit went in
  const auto again = std::chrono::steady_clock::now();
  EXPECT_FALSE(write_all_held(fds[1], "more\n", 5));  // the default deadline, a minute, not taken
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::seconds(5));
  close(fds[0]);
  close(fds[1]);
}

TEST_F(Unsandboxed, APipeFoundFullIsMadeLargerToHoldTheRest) {
  // A parent that reads its child's stderr only after the child ended: 200 KB more than the
  // pipe's 64 KiB went in at once (the pipe made 256 KiB), where every process of a script waited
  // out its deadline in turn (a user trial). Full with less than its size in it (writes that
  // share no slot: 33,600 bytes fill 64 KiB), it is made twice as large at least.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ASSERT_EQ(fcntl(fds[1], F_SETPIPE_SZ, 65536), 65536);
  const std::string text(200'000, 'g');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(write_all_held(fds[1], text.data(), text.size(), 10'000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(fcntl(fds[1], F_GETPIPE_SZ), 262144);
  int small[2];
  ASSERT_EQ(pipe2(small, O_CLOEXEC), 0);
  ASSERT_EQ(fcntl(small[1], F_SETPIPE_SZ, 65536), 65536);
  const std::string piece(2100, 'p');  // two do not fit in one 4 KiB slot
  for (int i = 0; i < 16; ++i) ASSERT_EQ(write(small[1], piece.data(), piece.size()), 2100);
  const std::string more(3000, 'm');
  EXPECT_TRUE(write_all_held(small[1], more.data(), more.size(), 10'000));
  EXPECT_EQ(fcntl(small[1], F_GETPIPE_SZ), 131072);
  for (int fd : {fds[0], fds[1], small[0], small[1]}) close(fd);
}

TEST_F(Unsandboxed, ATerminalNobodyReadsIsGivenUpOn) {
  // A terminal says it has room when it has any, less than a 4 KiB write needs: a write after
  // poll blocked in write(2), and a report to a terminal nobody read hung the exit for good
  // (a review's: `script`- or pexpect-style parents that wait before they read).
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  const std::string text(1 << 20, 't');
  std::atomic<bool> done{false};
  std::thread rescue([&] {  // a hang ends when the terminal is read, and the test then fails
    for (int i = 0; i < 100 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    char buf[65536];
    while (!done) (void)!read(master, buf, sizeof buf);
  });
  const auto start = std::chrono::steady_clock::now();
  const bool ok = write_all_held(slave, text.data(), text.size(), 300);
  const auto took = std::chrono::steady_clock::now() - start;
  done = true;
  close(slave);  // the reader's read ends
  rescue.join();
  close(master);
  EXPECT_FALSE(ok);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(WriteAllHeld, ASandboxedProcessWritesPlainly) {
  // Under a seccomp filter nothing but write(2) is made (no open, poll or ioctl, which a filter
  // could kill the process for): into a full pipe that is a blocking write, which waits for the
  // reader however short the deadline (outside a sandbox it would give up after 50 ms).
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const std::string text(256 << 10, 'p');
  std::size_t got = 0;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    char buf[65536];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got += static_cast<std::size_t>(n);
  });
  g_sandboxed = [] { return true; };
  const auto start = std::chrono::steady_clock::now();
  const bool ok = write_all_held(fds[1], text.data(), text.size(), 50);
  const auto took = std::chrono::steady_clock::now() - start;
  g_sandboxed = nullptr;
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_TRUE(ok);
  EXPECT_EQ(got, text.size());
  EXPECT_GE(took, std::chrono::milliseconds(250));
}

}  // namespace
}  // namespace heapledger::detail
