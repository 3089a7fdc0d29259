// The library's own stderr lines (tracker/write_signals.h): whole lines, cut at 1 KiB.
#include "tracker/write_signals.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace heapledger::detail {
namespace {

// What stderr_line(args...) wrote to fd 2.
template <typename... Args>
std::string written(const char* format, Args... args) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
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

}  // namespace
}  // namespace heapledger::detail
