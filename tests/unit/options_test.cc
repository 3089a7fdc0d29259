// HEAPLEDGER_OPTIONS parsing: defaults, good values, and every kind of bad input yielding one
// warning naming the problem while the defaults stay in force.
#include "tracker/options.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <utility>

namespace heapledger::detail {
namespace {

struct Parsed {
  Options o;
  OptionWarnings w;
};

Parsed parse(const char* text) {
  Parsed p;
  parse_options(text, &p.o, &p.w);
  return p;
}

TEST(Options, Defaults) {
  Parsed p = parse(nullptr);
  EXPECT_STREQ(p.o.log, "stderr");
  EXPECT_STREQ(p.o.json, "");
  EXPECT_TRUE(p.o.track);
  EXPECT_EQ(p.o.max_frames, 64);
  EXPECT_EQ(p.o.leak_exitcode, 0);
  EXPECT_EQ(p.o.reachable_sites, 500);
  EXPECT_EQ(p.w.count, 0);
}

TEST(Options, GoodValues) {
  Parsed p = parse(
      "log=/tmp/a.%p.txt:json=/tmp/r.json:track=0:max_frames=8:leak_exitcode=23:"
      "suppressions=/x/supp.txt:show_reachable=true:reachable_sites=0");
  EXPECT_EQ(p.w.count, 0) << p.w.lines[0];
  EXPECT_STREQ(p.o.log, "/tmp/a.%p.txt");
  EXPECT_STREQ(p.o.json, "/tmp/r.json");
  EXPECT_FALSE(p.o.track);
  EXPECT_EQ(p.o.max_frames, 8);
  EXPECT_EQ(p.o.reachable_sites, 0);
  EXPECT_EQ(p.o.leak_exitcode, 23);
  EXPECT_STREQ(p.o.suppressions, "/x/supp.txt");
  EXPECT_TRUE(p.o.show_reachable);
}

// `heapledger run --json r.json --option track=0` wrote no file and said nothing (a user trial's):
// a report asked for with track=0 gets a warning; the defaults and "none" get none.
TEST(Options, ReportsAskedForWithTrackOffAreWarnedOf) {
  Parsed p = parse("log=/tmp/a.txt:json=/tmp/r.json:track=0");
  warn_reports_unwritten(p.o, &p.w);
  ASSERT_EQ(p.w.count, 2);
  EXPECT_STREQ(p.w.lines[0],
               "json=/tmp/r.json: no report with track=0 (pools only), so none is written");
  EXPECT_STREQ(p.w.lines[1],
               "log=/tmp/a.txt: no report with track=0 (pools only), so none is written");
  for (const char* quiet : {"track=0", "track=0:log=none:json=none", "track=0:log=stderr",
                            "log=/tmp/a.txt:json=/tmp/r.json"}) {
    Parsed q = parse(quiet);
    warn_reports_unwritten(q.o, &q.w);
    EXPECT_EQ(q.w.count, 0) << quiet;
  }
}

// An exit status asked for with track=0 never comes: nothing is looked for (a CI gate that passed
// green, with no word why: a user trial).
TEST(Options, ExitStatusesAskedForWithTrackOffAreWarnedOf) {
  Parsed p = parse("track=0:leak_exitcode=23:error_exitcode=42");
  warn_reports_unwritten(p.o, &p.w);
  ASSERT_EQ(p.w.count, 2);
  EXPECT_STREQ(p.w.lines[0],
               "leak_exitcode=23: no leaks are looked for with track=0 (pools only), so the exit "
               "status stays the program's");
  EXPECT_STREQ(p.w.lines[1],
               "error_exitcode=42: no heap misuse is looked for with track=0 (pools only), so the "
               "exit status stays the program's");
  Parsed q = parse("leak_exitcode=23:error_exitcode=42");
  warn_reports_unwritten(q.o, &q.w);
  EXPECT_EQ(q.w.count, 0);
}

// A mistyped suppressions path was said only at exit, and only when a leak was there to match
// (a clean run passed without a word): one that cannot be opened, or is a directory, is dropped
// with a warning as the process starts; a readable file and none stay, silently.
TEST(Options, AnUnreadableSuppressionsFileIsDroppedWithAWarning) {
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "heapledger-no-such.supp";
  for (const auto& [path, why] : {std::pair{missing, "No such file or directory"},
                                  std::pair{std::string("/"), "Is a directory"}}) {
    Parsed p = parse(("suppressions=" + path).c_str());
    drop_unreadable_suppressions(&p.o, &p.w);
    ASSERT_EQ(p.w.count, 1) << path;
    EXPECT_EQ(std::string(p.w.lines[0]),
              "suppressions=" + path + ": cannot read it (" + why + "), ignored");
    EXPECT_STREQ(p.o.suppressions, "");
  }
  const std::string readable = dir + "heapledger-options-test.supp";
  std::FILE* f = std::fopen(readable.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("leak:nothing\n", f);
  std::fclose(f);
  for (const std::string& text : {"suppressions=" + readable, std::string("suppressions=none")}) {
    Parsed p = parse(text.c_str());
    drop_unreadable_suppressions(&p.o, &p.w);
    EXPECT_EQ(p.w.count, 0) << text;
  }
  Parsed kept = parse(("suppressions=" + readable).c_str());
  drop_unreadable_suppressions(&kept.o, &kept.w);
  EXPECT_EQ(std::string(kept.o.suppressions), readable);
  std::remove(readable.c_str());
  // A named pipe is looked at, not opened: the open waited for a writer (here: for good), or
  // took the writer's only open from the exit's read, which then waited for good (a review's).
  const std::string fifo = dir + "heapledger-options-test.fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Parsed piped = parse(("suppressions=" + fifo).c_str());
  drop_unreadable_suppressions(&piped.o, &piped.w);
  EXPECT_EQ(piped.w.count, 0) << piped.w.lines[0];
  EXPECT_EQ(std::string(piped.o.suppressions), fifo);
  std::remove(fifo.c_str());
}

// log=stdout and json=- went into files named "stdout" and "-" in the current directory (a user
// trial): both are the program's stdout, as /dev/stdout is. Not for the suppressions file.
TEST(Options, StdoutAndDashAreTheProgramsStdout) {
  for (const char* name : {"stdout", "-"}) {
    Parsed p =
        parse((std::string("log=") + name + ":json=" + name + ":suppressions=" + name).c_str());
    EXPECT_EQ(p.w.count, 0) << p.w.lines[0];
    EXPECT_STREQ(p.o.log, "/dev/stdout") << name;
    EXPECT_STREQ(p.o.json, "/dev/stdout") << name;
    EXPECT_STREQ(p.o.suppressions, name);
  }
  Parsed p = parse("log=./stdout");
  EXPECT_STREQ(p.o.log, "./stdout");  // a file of that name, asked for as one
}

TEST(Options, ChoicesAcceptOnlyTheirValues) {
  Parsed p = parse(nullptr);
  EXPECT_STREQ(p.o.unwind, "fast");
  EXPECT_STREQ(p.o.on_error, "report");
  p = parse("unwind=libunwind:on_error=abort");
  EXPECT_EQ(p.w.count, 0);
  EXPECT_STREQ(p.o.unwind, "libunwind");
  EXPECT_STREQ(p.o.on_error, "abort");
  p = parse("unwind=verify");
  EXPECT_STREQ(p.o.unwind, "verify");
  p = parse("unwind=abort:on_error=verify:unwind=");
  EXPECT_EQ(p.w.count, 3);
  EXPECT_STREQ(p.o.unwind, "fast");
  EXPECT_STREQ(p.o.on_error, "report");
}

TEST(Options, UnknownKeyWarnsOnceAndNamesIt) {
  Parsed p = parse("bogus=1:max_frames=10");
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("unknown option 'bogus'"), std::string::npos);
  EXPECT_EQ(p.o.max_frames, 10);
}

TEST(Options, BadValuesKeepDefaults) {
  Parsed p = parse("max_frames=0:max_frames=9999:max_frames=abc:track=maybe:leak_exitcode=-1");
  EXPECT_EQ(p.w.count, 5);
  EXPECT_EQ(p.o.max_frames, 64);
  EXPECT_TRUE(p.o.track);
  EXPECT_EQ(p.o.leak_exitcode, 0);
  EXPECT_NE(std::string(p.w.lines[3]).find("bad value 'maybe' for option 'track'"), std::string::npos)
      << p.w.lines[3];
}

// A bad value's warning says what the option takes (`bad value '300' for option 'leak_exitcode',
// default kept` did not: a user trial).
TEST(Options, ABadValuesWarningSaysWhatWouldDo) {
  Parsed p = parse(
      "leak_exitcode=300:max_frames=0:quarantine_mb=-1:track=maybe:unwind=slow:"
      "on_error=x");
  ASSERT_EQ(p.w.count, 6);
  EXPECT_STREQ(p.w.lines[0],
               "bad value '300' for option 'leak_exitcode' (a whole number from 0 to 255), "
               "default kept");
  EXPECT_STREQ(
      p.w.lines[1],
      "bad value '0' for option 'max_frames' (a whole number from 1 to 256), default kept");
  EXPECT_STREQ(p.w.lines[2],
               "bad value '-1' for option 'quarantine_mb' (a whole number from 0 to 65536), "
               "default kept");
  EXPECT_STREQ(
      p.w.lines[3],
      "bad value 'maybe' for option 'track' (1, true or yes; 0, false or no), default kept");
  EXPECT_STREQ(p.w.lines[4],
               "bad value 'slow' for option 'unwind' (fast, libunwind or verify), default kept");
  EXPECT_STREQ(p.w.lines[5], "bad value 'x' for option 'on_error' (report or abort), default kept");
  p = parse("peak_sites=-3");
  ASSERT_EQ(p.w.count, 1);
  EXPECT_STREQ(p.w.lines[0],
               "bad value '-3' for option 'peak_sites' (a whole number, 0 or more), default kept");
  // After a good value of its own, a bad one keeps that: the warning says so.
  p = parse("leak_exitcode=23:leak_exitcode=abc");
  EXPECT_EQ(p.o.leak_exitcode, 23);
  ASSERT_EQ(p.w.count, 1);
  EXPECT_STREQ(p.w.lines[0],
               "bad value 'abc' for option 'leak_exitcode' (a whole number from 0 to 255), the "
               "value before it kept");
}

// An empty text report path is refused at start (it said so only at exit, as a path it could
// not write to); an empty JSON path is the default: no JSON report.
TEST(Options, AnEmptyLogPathKeepsStderr) {
  Parsed p = parse("log=:json=");
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("bad value '' for option 'log'"), std::string::npos)
      << p.w.lines[0];
  EXPECT_STREQ(p.o.log, "stderr");
  EXPECT_STREQ(p.o.json, "");
}

// json=none is no JSON report (it wrote a file named "none", a user trial), as log=none is no text.
TEST(Options, JsonNoneIsNoJsonReport) {
  Parsed p = parse("json=none");
  EXPECT_EQ(p.w.count, 0);
  EXPECT_STREQ(p.o.json, "");
}

// suppressions=none is no suppressions file, as `heapledger options` shows its default (it was a
// file named "none", and a warning that it could not be read: a review's).
TEST(Options, SuppressionsNoneIsNoFile) {
  Parsed p = parse("suppressions=none");
  EXPECT_EQ(p.w.count, 0);
  EXPECT_STREQ(p.o.suppressions, "");
  anchor_paths(&p.o, "/tmp/d", &p.w);
  EXPECT_STREQ(p.o.suppressions, "");
}

// Both reports into one file: one replaced the other, silently (a user trial).
TEST(Options, TheSameFileForBothReportsSendsTheTextToStderr) {
  Parsed p = parse("log=r.txt:json=/tmp/d/r.txt");
  anchor_paths(&p.o, "/tmp/d", &p.w);
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("log and json name the same file '/tmp/d/r.txt'"),
            std::string::npos)
      << p.w.lines[0];
  EXPECT_STREQ(p.o.log, "stderr");
  EXPECT_STREQ(p.o.json, "/tmp/d/r.txt");
  Parsed both = parse("log=stderr:json=stderr");  // both on stderr, one after the other: fine
  anchor_paths(&both.o, "/tmp/d", &both.w);
  EXPECT_EQ(both.w.count, 0);
}

// Started in a directory that was removed, relative report paths cannot be made absolute: a
// warning says so (they went silently wherever the program was at exit, a user trial).
TEST(Options, RelativePathsWithNoDirectoryAreWarnedAbout) {
  Parsed p = parse("log=r.txt:json=/abs/r.json");
  anchor_paths(&p.o, nullptr, &p.w);
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("'r.txt' is taken from the directory"),
            std::string::npos)
      << p.w.lines[0];
  EXPECT_STREQ(p.o.log, "r.txt");
  Parsed plain = parse("log=stderr");
  anchor_paths(&plain.o, nullptr, &plain.w);
  EXPECT_EQ(plain.w.count, 0);
}

TEST(Options, MissingEqualsAndEmptyPairs) {
  Parsed p = parse("::track:json=x::");
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("'track' has no '=value'"), std::string::npos);
  EXPECT_STREQ(p.o.json, "x");
}

// LeakSanitizer takes spaces, commas and colons between its options; a space or comma is taken as
// a separator where another option's key= follows it, and is part of the value elsewhere. With
// only ':', `log=none leak_exitcode=23` wrote the text report to a file named "none
// leak_exitcode=23" and left the exit status alone, without a word (a CI user's trial).
TEST(Options, SpacesAndCommasSeparateOptionsAsInLeakSanitizer) {
  for (const char* text : {"log=none leak_exitcode=23", "log=none,leak_exitcode=23",
                           "log=none, leak_exitcode=23", " log=none\tleak_exitcode=23\n",
                           "log=none :leak_exitcode=23, ", "leak_exitcode=23 log=none"}) {
    Parsed p = parse(text);
    EXPECT_STREQ(p.o.log, "none") << text;
    EXPECT_EQ(p.o.leak_exitcode, 23) << text;
    EXPECT_EQ(p.w.count, 0) << text << ": " << p.w.lines[0];
  }
  Parsed p = parse("log=/tmp/my dir/a,b.txt:json=/tmp/x y.json suppressions=/tmp/s, t");
  EXPECT_STREQ(p.o.log, "/tmp/my dir/a,b.txt");
  EXPECT_STREQ(p.o.json, "/tmp/x y.json");
  EXPECT_STREQ(p.o.suppressions, "/tmp/s, t");
  EXPECT_EQ(p.w.count, 0);
  // A key of LeakSanitizer's, or a misspelt one: said, not taken into the path before it.
  p = parse("log=/tmp/o1.txt detect_leaks=1");
  EXPECT_STREQ(p.o.log, "/tmp/o1.txt");
  ASSERT_EQ(p.w.count, 1);
  EXPECT_NE(std::string(p.w.lines[0]).find("unknown option 'detect_leaks'"), std::string::npos)
      << p.w.lines[0];
}

TEST(Options, OverlongValueIsRejected) {
  std::string text = "json=" + std::string(5000, 'a');
  Parsed p = parse(text.c_str());
  EXPECT_EQ(p.w.count, 1);
  EXPECT_STREQ(p.o.json, "");
}

// Any path the system takes (PATH_MAX, 4096 with its terminating zero) is taken.
TEST(Options, PathsUpToPathMaxAreTaken) {
  std::string path = "/" + std::string(4094, 'a');
  std::string text = "json=" + path + ":log=" + path;
  Parsed p = parse(text.c_str());
  EXPECT_EQ(p.w.count, 0);
  EXPECT_EQ(std::string(p.o.json), path);
  EXPECT_EQ(std::string(p.o.log), path);
}

TEST(Options, WarningsAreBounded) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "k" + std::to_string(i) + "=1:";
  Parsed p = parse(text.c_str());
  EXPECT_EQ(p.w.count, OptionWarnings::kMax);
}

TEST(Options, HelpListsEveryKey) {
  char buf[4096];
  std::size_t n = describe_options(buf, sizeof buf);
  std::string help(buf, n);
  for (const char* key : {"log", "json", "track", "max_frames", "suppressions", "leak_exitcode"})
    EXPECT_NE(help.find(key), std::string::npos) << key;
}

TEST(Options, RelativePathsAreTakenFromTheStartingDirectory) {
  Options o;
  OptionWarnings w;
  parse_options("log=logs/%p.txt:json=r.json:suppressions=../s.supp", &o, &w);
  anchor_paths(&o, "/work/dir", &w);
  EXPECT_STREQ(o.log, "/work/dir/logs/%p.txt");
  EXPECT_STREQ(o.json, "/work/dir/r.json");
  EXPECT_STREQ(o.suppressions, "/work/dir/../s.supp");
  EXPECT_EQ(w.count, 0);

  Options kept;
  parse_options("log=stderr:json=/abs/r.json", &kept, &w);
  anchor_paths(&kept, "/", &w);
  EXPECT_STREQ(kept.log, "stderr");
  EXPECT_STREQ(kept.json, "/abs/r.json");
  EXPECT_STREQ(kept.suppressions, "");
  Options none;
  parse_options("log=none:json=x.json", &none, &w);
  anchor_paths(&none, "/", &w);
  EXPECT_STREQ(none.log, "none");
  EXPECT_STREQ(none.json, "/x.json");  // the root has its slash already

  // A % in the directory is doubled in front of a report path (%p there became the pid), not in
  // front of the suppressions path (used as it is).
  Options percent;
  parse_options("json=r%p.json:suppressions=s.supp", &percent, &w);
  anchor_paths(&percent, "/tmp/a%p%%b", &w);
  EXPECT_STREQ(percent.json, "/tmp/a%%p%%%%b/r%p.json");
  EXPECT_STREQ(percent.suppressions, "/tmp/a%p%%b/s.supp");

  // One that would not fit with the directory in front stays as it was, with a warning.
  Options longer;
  std::string name(kMaxPath - 4, 'a');
  parse_options(("json=" + name).c_str(), &longer, &w);
  anchor_paths(&longer, "/work/dir", &w);
  EXPECT_EQ(std::string(longer.json), name);
  ASSERT_EQ(w.count, 1);
  EXPECT_NE(std::string(w.lines[0]).find("too long"), std::string::npos);
}

// What the first allocations go by, before the options are parsed: track as parse_options would
// set it.
TEST(Options, TrackingAskedReadsTrackAsTheParserDoes) {
  for (const char* text :
       {"", "track=0", "track=1", "log=none:track=0", "track=0 log=none", "track=no:track=yes",
        "track=false:track=bogus", "tracking=0", "xtrack=0", "track=", "log=/tmp/track=0"}) {
    Options o;
    OptionWarnings w;
    parse_options(text, &o, &w);
    EXPECT_EQ(tracking_asked(text), o.track) << text;
  }
  EXPECT_TRUE(tracking_asked(nullptr));
  EXPECT_FALSE(tracking_asked("log=none:track=0"));
}

}  // namespace
}  // namespace heapledger::detail
