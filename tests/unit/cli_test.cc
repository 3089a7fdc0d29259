// Tests for the heapledger CLI as a user runs it: `report` on JSON files the test writes, help,
// version and usage errors, and `run`'s plumbing (environment, exit status, signals, warnings)
// with a harmless stand-in library, so none of it needs libheapledger.so.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tracker/report_json.h"

namespace heapledger {
namespace {

namespace fs = std::filesystem;

struct CliResult {
  pid_t pid = 0;    // of the CLI
  int status = -1;  // wait status
  std::string out, err;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

using EnvChanges =
    std::vector<std::pair<std::string, std::optional<std::string>>>;  // nullopt: unset

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A scratch directory per test, removed afterwards.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A ':' in $TMPDIR would end up in paths that HEAPLEDGER_OPTIONS cannot hold.
    fs::path tmp = fs::temp_directory_path();
    if (tmp.string().find(':') != std::string::npos) tmp = "/tmp";
    std::string pattern = (tmp / "heapledger_cli_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = fs::canonical(pattern);  // what getcwd() returns in there, symlinks resolved
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs the CLI with `args`, stdin from `input`, in the scratch directory, with an environment
  // of its own: PATH and what `env` sets, nothing inherited (HEAPLEDGER_OPTIONS, LD_PRELOAD,
  // LANG... from whoever runs the tests would otherwise change what the CLI does and says).
  CliResult cli(const std::vector<std::string>& args, const EnvChanges& env = {},
                const std::string& input = "") {
    spit(dir_ / "stdin", input);
    std::vector<char*> argv{const_cast<char*>(HEAPLEDGER_CLI)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      redirect(dir_ / "stdin", 0, O_RDONLY);
      redirect(dir_ / "stdout", 1, O_WRONLY | O_CREAT | O_TRUNC);
      redirect(dir_ / "stderr", 2, O_WRONLY | O_CREAT | O_TRUNC);
      if (::chdir(dir_.c_str()) != 0) ::_exit(98);
      ::clearenv();
      ::setenv("PATH", "/usr/bin:/bin", 1);
      for (const auto& [key, value] : env)
        value ? ::setenv(key.c_str(), value->c_str(), 1) : ::unsetenv(key.c_str());
      ::execv(argv[0], argv.data());
      ::_exit(99);
    }
    CliResult r;
    r.pid = pid;
    ::waitpid(pid, &r.status, 0);
    r.out = slurp(dir_ / "stdout");
    r.err = slurp(dir_ / "stderr");
    return r;
  }

  fs::path write_report(const Report& r, const std::string& name = "report.json") {
    spit(dir_ / name, to_json(r));
    return dir_ / name;
  }

  // Three reports for the gates: pid 78 with nothing to fix (a reachable block), 77 with leaks,
  // 79 with a heap error.
  struct GateReports {
    fs::path clean, leaky, erring;
  };
  GateReports write_gate_reports();

  fs::path dir_;

 private:
  static void redirect(const fs::path& path, int fd, int flags) {
    int f = ::open(path.c_str(), flags, 0600);
    ::dup2(f, fd);
    ::close(f);
  }
};

Report leaking_report() {
  Report r;
  r.tool_version = "0.1.0";
  r.process.pid = 77;
  r.process.ppid = 1;
  r.process.exe = "/tmp/demo";
  r.process.argv = {"demo"};
  r.process.duration_ms = 3.0;
  r.summary.allocations = 4;
  r.summary.frees = 1;
  Stack stack{{0x401136, "/tmp/demo", 0x1136, "leak_malloc", "/src/demo.c", 12},
              {0x7f0000001000, "/lib/libc.so.6", 0x1000, std::nullopt, std::nullopt, std::nullopt}};
  r.leaks = {{"definite", 2048, 2, 1.0, 2.0, stack},
             {"unknown", 1024, 1, 1.5, 1.5, stack},
             {"reachable", 64, 1, 0.5, 0.5, stack}};
  return r;
}

CliTest::GateReports CliTest::write_gate_reports() {
  Report clean = leaking_report();
  clean.process.pid = 78;
  clean.leaks = {{"reachable", 64, 1, 0.5, 0.5, {}}};
  Report leaky = leaking_report();
  leaky.summary.leaked_blocks = 3;
  Report erring = clean;
  erring.process.pid = 79;
  erring.summary.errors = 1;
  return {write_report(clean, "clean.json"), write_report(leaky, "leaky.json"),
          write_report(erring, "errors.json")};
}

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

// ---- report ----

TEST_F(CliTest, ReportPrintsTheTextReport) {
  CliResult r = cli({"report", write_report(leaking_report())});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind("==77== heapledger 0.1.0 — /tmp/demo (pid 77, 3.0 ms)\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("==77== LEAK 1 of 2: 2,048 bytes in 2 blocks definitely lost, allocated "
                       "from 1.0 ms to 2.0 ms\n==77==     #0 0x401136 leak_malloc  demo.c:12\n"
                       "==77==     #1 0x7f0000001000 libc.so.6+0x1000\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("==77== LEAK 2 of 2: 1,024 bytes in 1 block not freed"), std::string::npos);
  EXPECT_NE(r.out.find("still reachable at exit: 64 B in 1 block from 1 call site (not listed)"),
            std::string::npos)
      << r.out;
}

TEST_F(CliTest, ReportFlagsLimitAndExpand) {
  fs::path file = write_report(leaking_report());
  CliResult r = cli({"report", "--max-leaks", "1", "--max-frames", "1", file});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_NE(
      r.out.find("... and 1 more leak site (1.0 KiB in 1 block) — --max-leaks 0 lists them all"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("==77==     ... 1 more frame\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("LEAK 2 of"), std::string::npos);

  r = cli({"report", "--show-reachable", file});
  EXPECT_NE(r.out.find("REACHABLE 1 of 1: 64 bytes in 1 block still reachable"), std::string::npos)
      << r.out;
}

// A CI gate over the JSON reports of a run's processes: several files, printed one after
// another, and an exit status for leaks or heap errors in any of them (it exited 0 whatever the
// report held, and took one file; a CI user's trial).
TEST_F(CliTest, ReportGatesOnLeaksAndErrorsInAnyOfSeveralReports) {
  const auto [c, l, e] = write_gate_reports();
  EXPECT_EQ(cli({"report", "--leak-exitcode", "23", c}).exit_code(), 0);
  CliResult r = cli({"report", "--leak-exitcode", "23", c, l});
  EXPECT_EQ(r.exit_code(), 23) << r.err;
  EXPECT_LT(r.out.find("==78== heapledger"), r.out.find("==77== heapledger")) << r.out;  // in order
  EXPECT_EQ(cli({"report", l}).exit_code(), 0);  // no gate asked for
  EXPECT_EQ(cli({"report", "--leak-exitcode", "23", "--error-exitcode", "42", l, e}).exit_code(),
            42);
  EXPECT_EQ(cli({"report", "--leak-exitcode", "23", "--error-exitcode", "42", c}).exit_code(), 0);
  // One unreadable file: said, the others shown, and status 2 whatever they hold.
  r = cli({"report", "--leak-exitcode", "23", (dir_ / "missing.json").string(), l});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_NE(r.err.find("missing.json: No such file or directory"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("==77== heapledger"), std::string::npos) << r.out;
  r = cli({"report", "--leak-exitcode", "256", l});
  EXPECT_EQ(r.exit_code(), 2);
}

// --suppressions hides matching leaks in each report before the gates read them: a build's
// compilers leak, and the gate over its reports failed on them (a user trial's make).
TEST_F(CliTest, ReportSuppressionsHideLeaksBeforeTheGates) {
  Report two = leaking_report();
  Stack tool{
      {0x402000, "/usr/bin/x86_64-linux-gnu-as", 0x2000, "xmalloc", std::nullopt, std::nullopt}};
  two.leaks = {{"definite", 2048, 2, 1.0, 2.0, leaking_report().leaks[0].stack},
               {"definite", 100, 1, 1.0, 1.0, tool}};
  two.summary.leaked_bytes = 2148;
  two.summary.leaked_blocks = 3;
  const fs::path file = write_report(two, "two.json");
  auto supp = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  };
  const std::string toolchain =
      supp("toolchain.supp", "# the assembler's\nleak:x86_64-linux-gnu-as\n");
  const std::string both = supp("both.supp", "leak:x86_64-linux-gnu-as\nleak:leak_malloc\n");
  EXPECT_EQ(cli({"report", "--leak-exitcode", "23", file}).exit_code(), 23);
  CliResult r = cli({"report", "--leak-exitcode", "23", "--suppressions", toolchain, file});
  EXPECT_EQ(r.exit_code(), 23) << r.err;  // the program's own leak is left
  EXPECT_NE(r.out.find("leaked: 2.0 KiB in 2 blocks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("suppressed: 100 B"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("xmalloc"), std::string::npos) << r.out;
  r = cli({"report", "--leak-exitcode", "23", "--suppressions", both, file});
  EXPECT_EQ(r.exit_code(), 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  r = cli(
      {"report", "--leak-exitcode", "23", "--suppressions", (dir_ / "nope.supp").string(), file});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("heapledger report: cannot read the suppressions file"), std::string::npos)
      << r.err;
}

// --quiet prints only the reports with something to fix, as the library's quiet=1 decides it (a
// make -j run's 209 reports were 16,000 lines: a user trial), and counts the others on stderr;
// the gates still see every report.
TEST_F(CliTest, ReportQuietPrintsOnlyReportsWithSomethingToFix) {
  const auto [c, l, e] = write_gate_reports();
  CliResult r = cli({"report", "--quiet", c, l, e, c});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out.find("==78=="), std::string::npos) << r.out;
  EXPECT_LT(r.out.find("==77== heapledger"), r.out.find("==79== heapledger")) << r.out;
  EXPECT_EQ(
      r.err,
      "heapledger report: 2 of 4 reports had nothing to fix: no leaks, no heap errors (not shown: "
      "--quiet)\n");
  r = cli({"report", "--quiet", "--leak-exitcode", "23", c});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(
      r.err,
      "heapledger report: 1 of 1 report had nothing to fix: no leaks, no heap errors (not shown: "
      "--quiet)\n");
  EXPECT_EQ(cli({"report", "--quiet", "--leak-exitcode", "23", c, l}).exit_code(), 23);
  r = cli({"report", l, e});
  EXPECT_EQ(r.err, "");  // without --quiet, nothing is left out and nothing said
  // A file that cannot be read is said on its own line, not counted among those read, and the
  // status is 2 (it was "1 of 2 reports had nothing to fix", a user trial).
  r = cli({"report", "--quiet", c, "missing.json", l});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_NE(r.out.find("==77== heapledger"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("heapledger report: missing.json: No such file or directory\n"),
            std::string::npos);
  EXPECT_NE(
      r.err.find("heapledger report: 1 of 2 reports had nothing to fix: no leaks, no heap errors "
                 "(not shown: --quiet); 1 could not be read\n"),
      std::string::npos)
      << r.err;
}

TEST_F(CliTest, ReportReadsStdin) {
  CliResult r = cli({"report", "-"}, {}, to_json(leaking_report()));
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_NE(r.out.find("LEAK 1 of 2"), std::string::npos);
}

TEST_F(CliTest, ReportOfMissingFileIsOneLineAndStatus2) {
  std::string missing = (dir_ / "missing.json").string();
  CliResult r = cli({"report", missing});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "heapledger report: " + missing + ": No such file or directory\n");
}

TEST_F(CliTest, ReportOfBadJsonIsOneLineAndStatus2) {
  spit(dir_ / "bad.json", "{\"schema\": \"heapledger/1\", \"leaks\": [");
  CliResult r = cli({"report", dir_ / "bad.json"});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("heapledger report: " + (dir_ / "bad.json").string() +
                            ": not a heapledger report: invalid JSON: ",
                        0),
            0u)
      << r.err;
}

TEST_F(CliTest, ReportOfOtherSchemaIsOneLineAndStatus2) {
  spit(dir_ / "v9.json", R"({"schema": "heapledger/9"})");
  CliResult r = cli({"report", dir_ / "v9.json"});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_EQ(r.err, "heapledger report: " + (dir_ / "v9.json").string() +
                       ": unsupported schema heapledger/9 (this build reads heapledger/1)\n");
}

// ---- help, version, usage errors ----

TEST_F(CliTest, HelpOnEveryCommandExitsZero) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--help"}, {"run", "--help"}, {"report", "--help"}}) {
    CliResult r = cli(args);
    EXPECT_EQ(r.exit_code(), 0) << args.front();
    EXPECT_NE(r.out.find("Usage: heapledger"), std::string::npos) << r.out;
  }
  std::string run_help = cli({"run", "--help"}).out;
  for (const char* flag : {"--json", "--log", "--option", "--leak-exitcode", "--error-exitcode",
                           "--suppressions", "--show-reachable", "--on-error"})
    EXPECT_NE(run_help.find(flag), std::string::npos) << flag << " missing in\n" << run_help;
  EXPECT_NE(cli({"report", "--help"}).out.find("--show-reachable"), std::string::npos);
}

TEST_F(CliTest, Version) {
  CliResult r = cli({"--version"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.out, "heapledger " HEAPLEDGER_VERSION "\n");
}

// Usage errors exit 2; `run`'s exit 125, which a program's own status is not taken for.
TEST_F(CliTest, UsageErrorsExitNonZeroWithAMessage) {
  CliResult r = cli({"report", "--bogus", "x.json"});
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  CliResult bogus = cli({"--bogus"});
  EXPECT_EQ(bogus.exit_code(), 2);
  EXPECT_NE(bogus.err.find("unknown option '--bogus'"), std::string::npos) << bogus.err;
  EXPECT_EQ(cli({}).exit_code(), 2);
  EXPECT_EQ(cli({"report"}).exit_code(), 2);
  EXPECT_EQ(cli({"run"}).exit_code(), 125);
  EXPECT_EQ(cli({"run", "--option", "no_equals", "true"}).exit_code(), 125);
  EXPECT_EQ(cli({"run", "--option", "a=b:c", "true"}).exit_code(), 125);
  // A key the library does not have, or a value it does not take, checked by its own parser: it
  // was said only as the program started, which ran all the same (a user trial).
  for (auto [option, why] :
       {std::pair<std::string, std::string>{"bogus=1", "unknown option 'bogus'"},
        {"max_frames=0", "bad value '0' for option 'max_frames' (a whole number from 1 to 256)"},
        {"on_error=maybe", "bad value 'maybe' for option 'on_error' (report or abort)"},
        // As --suppressions: a file that cannot be read (the library dropped it as it started).
        {"suppressions=/nonexistent/x.supp",
         "suppressions=/nonexistent/x.supp: cannot read it (No such file or directory)"}}) {
    CliResult r = cli({"run", "--option", option, "echo", "ran"});
    EXPECT_EQ(r.exit_code(), 125) << option;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "heapledger run: --option: " + why + " (see heapledger run --help)\n");
  }
  EXPECT_EQ(cli({"run", "--leak-exitcode", "256", "true"}).exit_code(), 125);
  // An empty report path is named with its flag (it was "filesystem error: cannot make absolute
  // path: Invalid argument []", a user trial), and the program is not run; as a usage error, the
  // line names the command and its --help, as the parser's do (it said "heapledger: --log: ...",
  // another trial).
  for (const char* flag : {"--json", "--log"}) {
    CliResult r = cli({"run", flag, "", "echo", "ran"});
    EXPECT_EQ(r.exit_code(), 125) << flag;
    EXPECT_EQ(r.out, "") << flag;
    EXPECT_EQ(r.err, std::string("heapledger run: ") + flag +
                         ": an empty path (give a file, stdout, stderr or none) (see heapledger "
                         "run --help)\n");
  }
  // An unknown flag of a command is named with its command (CLI11 listed "-- --bogus").
  for (auto args : {std::vector<std::string>{"run", "--bogus", "--", "true"},
                    std::vector<std::string>{"run", "--json", "r.json", "--bogus", "true"}}) {
    CliResult r = cli(args);
    EXPECT_EQ(r.exit_code(), 125);
    EXPECT_NE(r.err.find("heapledger run: unknown option '--bogus' (see heapledger run --help)"), std::string::npos)
        << r.err;
  }
  // A word that is no command is named (CLI11 said only "A subcommand is required").
  CliResult word = cli({"bogus"});
  EXPECT_EQ(word.exit_code(), 2);
  EXPECT_EQ(word.err,
            "heapledger: unknown command 'bogus'; the commands are 'run', 'report' and 'options' "
            "(see --help)\n");
  // Counts are never negative (CLI11 read -1 into the unsigned count: everything was shown).
  // Each usage error is one line naming the tool and the command (CLI11's were two lines,
  // without either: "--max-leaks: ..." / "Run with --help for more information.").
  // Nor words, nor past what a count holds (CLI11 took 99999999999999999999 as the largest).
  for (const char* flag : {"--max-leaks", "--max-frames"}) {
    for (auto [value, why] :
         {std::pair<std::string, std::string>{"-1", "must be a whole number, 0 or more, not -1"},
          {"abc", "must be a whole number, 0 or more, not abc"},
          {"99999999999999999999",
           "must be a whole number from 0 to 4294967295, not 99999999999999999999"}}) {
      CliResult r = cli({"report", flag, value, "r.json"});
      EXPECT_EQ(r.exit_code(), 2) << flag << " " << value;
      EXPECT_EQ(r.err, std::string("heapledger report: ") + flag + ": " + why +
                           " (see heapledger report --help)\n");
    }
  }
  // An exit status is a number from 0 to 255 (CLI11 said "Value abc not in range 0 to 255").
  for (const char* value : {"abc", "256", "-1"}) {
    CliResult r = cli({"run", "--leak-exitcode", value, "--", "true"});
    EXPECT_EQ(r.exit_code(), 125) << value;
    EXPECT_EQ(r.err, std::string("heapledger run: --leak-exitcode: must be a whole number from 0 "
                                 "to 255, not ") +
                         value + " (see heapledger run --help)\n");
  }
  // A flag no command has, where the program would come, is named (CLI11 said only that the
  // program was missing: "command is required").
  for (auto args : {std::vector<std::string>{"run", "-weird"},
                    {"run", "--version"},
                    {"run", "--json", "r.json", "-weird"}}) {
    CliResult r = cli(args);
    EXPECT_EQ(r.exit_code(), 125) << args.back();
    EXPECT_EQ(r.err,
              "heapledger run: unknown option '" + args.back() + "' (see heapledger run --help)\n");
  }
  CliResult no_command = cli({});
  EXPECT_EQ(no_command.exit_code(), 2);
  EXPECT_EQ(no_command.err,
            "heapledger: a command is required: 'run', 'report' or 'options' (see --help)\n");
  CliResult no_file = cli({"report"});
  EXPECT_EQ(no_file.exit_code(), 2);
  EXPECT_EQ(no_file.err, "heapledger report: file is required (see heapledger report --help)\n");
  CliResult report = cli({"report", "--bogus", "r.json"});
  EXPECT_EQ(report.exit_code(), 2);
  EXPECT_NE(report.err.find("heapledger report: unknown option '--bogus'"), std::string::npos) << report.err;
}

// ---- run, with a stand-in for the library ----

// A library already loaded into this test, harmless to preload into anything.
std::string stand_in_library() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::size_t path = line.find('/');
    if (path != std::string::npos && line.find("/libm.so", path) != std::string::npos)
      return line.substr(path);
  }
  return "";
}

// The README's "At a glance" shows both commands' --help and the library's options as printed:
// reference facts were buried in its prose (new users' trials), and a copy by hand would drift.
TEST_F(CliTest, TheReadmeShowsTheHelpAsPrinted) {
  const std::string readme = slurp(HEAPLEDGER_README);
  for (const std::string command : {"run --help", "report --help", "options"}) {
    std::vector<std::string> args;
    for (std::size_t from = 0, to; from < command.size(); from = to + 1) {
      to = std::min(command.find(' ', from), command.size());
      args.push_back(command.substr(from, to - from));
    }
    CliResult r = cli(args);
    ASSERT_EQ(r.exit_code(), 0) << command;
    std::string help = r.out;
    while (help.ends_with('\n')) help.pop_back();
    const std::string block = "$ heapledger " + command + "\n" + help + "\n```";
    EXPECT_NE(readme.find(block), std::string::npos)
        << "README.md does not show `heapledger " << command << "` as printed:\n"
        << block;
  }
}

// `heapledger options` lists every key the library takes, each with its default as
// HEAPLEDGER_OPTIONS would give it.
TEST_F(CliTest, OptionsListsEveryKeyWithItsDefault) {
  CliResult r = cli({"options"});
  ASSERT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* line :
       {"\n  log              stderr  text report", "\n  json             none    JSON report",
        "\n  track            1       record", "\n  show_reachable   0       list",
        "\n  max_frames       64      frames", "\n  report_on_signal 1       report when"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
#define HL_OPTION(kind, name, def, help) +1
  constexpr std::size_t kKeys = 0
#include "tracker/options.inc"
      ;
#undef HL_OPTION
  std::size_t lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 2 + kKeys) << r.out;  // the header lines and one per key
}

class CliRunTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    library_ = stand_in_library();
    ASSERT_FALSE(library_.empty()) << "no libm in /proc/self/maps";
  }
  CliResult run(const std::vector<std::string>& args, EnvChanges env = {}) {
    env.insert(env.begin(), {"HEAPLEDGER_LIBRARY", library_});
    std::vector<std::string> all{"run"};
    all.insert(all.end(), args.begin(), args.end());
    return cli(all, env);
  }
  std::string library_;
};

TEST_F(CliRunTest, PassesTheExitStatusThrough) {
  EXPECT_EQ(run({"--", "sh", "-c", "exit 3"}).exit_code(), 3);
  EXPECT_EQ(run({"sh", "-c", "exit 0"}).exit_code(), 0);
}

// The program runs in the CLI's place (exec): same process id, and a signal sent to it, or to
// its process group (Ctrl-C, timeout, killpg), arrives once, with no CLI in between to relay it
// (a relayed group signal arrived twice).
TEST_F(CliRunTest, TheProgramRunsInTheCLIsPlace) {
  CliResult r = run({"sh", "-c", "echo $$"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, std::to_string(r.pid) + "\n");
}

TEST_F(CliRunTest, DiesOfTheSignalThatKilledTheProgram) {
  CliResult r = run({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.status;
  EXPECT_EQ(WTERMSIG(r.status), SIGTERM);
}

TEST_F(CliRunTest, ArgumentsFromTheProgramOnAreTheProgramsOwn) {
  CliResult r = run({"sh", "-c", "printf '%s|' \"$@\"", "sh", "--json", "-x", "--"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "--json|-x|--|");
}

constexpr const char* kShowPreloadAndOptions =
    "printf '%s\\n%s\\n' \"$LD_PRELOAD\" \"${HEAPLEDGER_OPTIONS-unset}\"";

// The environment's HEAPLEDGER_OPTIONS and LD_PRELOAD are kept; the --option values come after
// the environment's and the flags after both (the library lets later keys win: a flag wins over
// --option for the same key), and the library before the other preloads.
TEST_F(CliRunTest, SetsPreloadAndMergesOptions) {
  CliResult r =
      run({"--json", "out.json", "--log", "none", "--option", "max_frames=4", "--option",
           "json=other.json", "--leak-exitcode", "9", "--", "sh", "-c", kShowPreloadAndOptions},
          {{"LD_PRELOAD", "/already/there.so"}, {"HEAPLEDGER_OPTIONS", "log=stderr"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  std::string json = (dir_ / "out.json").string();
  EXPECT_EQ(r.out, library_ + ":/already/there.so\n" +
                       "log=stderr:max_frames=4:json=other.json:json=" + json +
                       ":log=none:leak_exitcode=9\n");
}

TEST_F(CliRunTest, FlagsAloneWhenTheEnvironmentHasNoOptions) {
  CliResult r = run({"--leak-exitcode", "9", "sh", "-c", kShowPreloadAndOptions});
  EXPECT_EQ(r.out, library_ + "\nleak_exitcode=9\n") << r.err;
  r = run({"--leak-exitcode", "9", "sh", "-c", kShowPreloadAndOptions},
          {{"HEAPLEDGER_OPTIONS", ""}, {"LD_PRELOAD", ""}});
  EXPECT_EQ(r.out, library_ + "\nleak_exitcode=9\n") << r.err;
}

TEST_F(CliRunTest, ErrorSuppressionAndReportFlagsBecomeOptions) {
  spit(dir_ / "leaks.supp", "leak:libfoo\n");
  fs::create_directory(dir_ / "sub");
  CliResult r =
      run({"--error-exitcode", "7", "--suppressions", "sub/../leaks.supp", "--show-reachable",
           "--on-error", "abort", "--leak-exitcode", "3", "sh", "-c", kShowPreloadAndOptions},
          {{"HEAPLEDGER_OPTIONS", "on_error=report"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\non_error=report:leak_exitcode=3:error_exitcode=7:suppressions=" +
                       (dir_ / "leaks.supp").string() + ":show_reachable=1:on_error=abort\n");
  r = run({"--on-error", "report", "sh", "-c", kShowPreloadAndOptions});
  EXPECT_EQ(r.out, library_ + "\non_error=report\n") << r.err;
}

// An entry of the environment's HEAPLEDGER_OPTIONS the library would not take is said once, by
// `run`, and dropped: every process of a script or a build said it again (a user trial's make
// -j2: 56 lines). The program runs with the others.
TEST_F(CliRunTest, TheEnvironmentsBadOptionsAreSaidOnceAndDropped) {
  CliResult r = run({"--log", "none", "sh", "-c", kShowPreloadAndOptions},
                    {{"HEAPLEDGER_OPTIONS", "max_frames=8:bogus=1::leak_exitcode=300:quiet=1"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\nmax_frames=8:quiet=1:log=none\n");
  EXPECT_EQ(r.err,
            "heapledger run: warning: HEAPLEDGER_OPTIONS: unknown option 'bogus', ignored\n"
            "heapledger run: warning: HEAPLEDGER_OPTIONS: bad value '300' for option "
            "'leak_exitcode' (a whole number from 0 to 255), default kept\n");
  // Pairs as the library splits them: a good one a space before a bad one is kept (both were
  // dropped: a leak gate switched off, a review's); a bad value after a good one of its key
  // keeps that, and the warning says so.
  r = run({"sh", "-c", kShowPreloadAndOptions},
          {{"HEAPLEDGER_OPTIONS", "leak_exitcode=23 bogus=1:log=none:leak_exitcode=abc"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\nleak_exitcode=23:log=none\n");
  EXPECT_EQ(r.err,
            "heapledger run: warning: HEAPLEDGER_OPTIONS: unknown option 'bogus', ignored\n"
            "heapledger run: warning: HEAPLEDGER_OPTIONS: bad value 'abc' for option "
            "'leak_exitcode' (a whole number from 0 to 255), the value before it kept\n");
  // Nothing left and no flags: the program gets none (the bad entry went on, a user trial).
  r = run({"sh", "-c", kShowPreloadAndOptions}, {{"HEAPLEDGER_OPTIONS", "jsn=x.json"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\nunset\n");
  EXPECT_EQ(r.err, "heapledger run: warning: HEAPLEDGER_OPTIONS: unknown option 'jsn', ignored\n");
  // A suppressions file that cannot be read, as the library would say it (said only at exit, and
  // only with leaks to match, before).
  r = run({"sh", "-c", kShowPreloadAndOptions},
          {{"HEAPLEDGER_OPTIONS", "suppressions=/nonexistent/x.supp:quiet=1"}});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\nquiet=1\n");
  EXPECT_EQ(r.err,
            "heapledger run: warning: HEAPLEDGER_OPTIONS: suppressions=/nonexistent/x.supp: "
            "cannot read it (No such file or directory), ignored\n");
}

// stdout and - are the program's stdout (they were files of those names: a user trial). A report
// file's directory that is not there is made before the program runs, whichever way the path
// came (a flag, --option, the environment; relative to the current directory): each process wrote
// its report to stderr, and a parent that waited before reading its children's stderr pipe stalled
// (a user trial). One that cannot be made is said, and the program runs all the same; none is
// made for a directory named with %p, each process's own.
TEST_F(CliRunTest, ReportDirectoriesAreMadeBeforeTheProgramRuns) {
  CliResult r = run({"--json", "-", "--log", "stdout", "sh", "-c", kShowPreloadAndOptions});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\njson=/dev/stdout:log=/dev/stdout\n");
  EXPECT_EQ(r.err, "");
  const fs::path missing = dir_ / "missing" / "deeper";
  r = run(
      {"--json", (missing / "r.json").string(), "--log", "logs.%p/r.txt", "sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(fs::is_directory(missing));
  EXPECT_FALSE(fs::exists(dir_ / "logs.%p"));
  r = run({"--option", "log=relative/r.txt", "true"}, {{"HEAPLEDGER_OPTIONS", "json=env/r.json"}});
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(fs::is_directory(dir_ / "relative"));
  EXPECT_TRUE(fs::is_directory(dir_ / "env"));
  // A directory that cannot even be looked at (a loop of symlinks): said, and the program runs
  // (it threw, and the program was not run: a review's).
  fs::create_symlink("loop", dir_ / "loop");
  r = run({"--json", (dir_ / "loop" / "sub" / "r.json").string(), "sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
  EXPECT_NE(r.err.find("heapledger run: warning: cannot make the directory " +
                       (dir_ / "loop" / "sub").string() +
                       " for the JSON report: Too many levels "
                       "of symbolic links"),
            std::string::npos)
      << r.err;
  spit(dir_ / "a_file", "");
  r = run({"--json", (dir_ / "a_file" / "r.json").string(), "sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
  EXPECT_EQ(r.err, "heapledger run: warning: cannot make the directory " +
                       (dir_ / "a_file").string() +
                       " for the JSON report: Not a directory; a report that cannot be written "
                       "goes to stderr\n");
  // There, but not to be written in (/proc/self: not even by root): said before the program
  // runs too (only at exit before, where the report went to stderr and a gate over the
  // directory never saw it: a CI user's trial). Not for a device, written in place.
  r = run({"--json", "/proc/self/r.json", "sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
  EXPECT_EQ(r.err.rfind("heapledger run: warning: cannot write in the directory /proc/self for the "
                        "JSON report: ",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("; a report that cannot be written goes to stderr\n"), std::string::npos);
  r = run({"--json", "/dev/null", "--log", "none", "true"});
  EXPECT_EQ(r.err, "");
}

TEST_F(CliRunTest, BadFlagValuesAreUsageErrors) {
  EXPECT_EQ(run({"--error-exitcode", "256", "true"}).exit_code(), 125);
  EXPECT_EQ(run({"--error-exitcode", "-1", "true"}).exit_code(), 125);
  EXPECT_EQ(run({"--on-error", "ignore", "true"}).exit_code(), 125);
  CliResult r = run({"--suppressions", "missing.supp", "true"});
  EXPECT_EQ(r.exit_code(), 125);
  EXPECT_NE(r.err.find("missing.supp"), std::string::npos) << r.err;
  spit(dir_ / "a:b.supp", "leak:x\n");
  EXPECT_EQ(run({"--suppressions", "a:b.supp", "true"}).exit_code(), 125);
}

// A ':' in the current directory's path: the report path goes as given, for the library to make
// absolute (it was refused with exit 125, though the library takes it, a user trial); a ':' in the
// path itself is still refused.
TEST_F(CliRunTest, ACurrentDirectoryWithAColonPassesTheReportPathAsGiven) {
  const fs::path top = dir_;
  dir_ = top / "a:b";
  fs::create_directory(dir_);
  CliResult r = run({"--json", "r.json", "sh", "-c", kShowPreloadAndOptions});
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, library_ + "\njson=r.json\n");
  EXPECT_NE(r.err.find("r.json is passed as given"), std::string::npos) << r.err;
  EXPECT_EQ(run({"--json", "x:y.json", "true"}).exit_code(), 125);
  dir_ = top;
}

TEST_F(CliRunTest, LeavesOptionsUnsetWhenThereAreNone) {
  CliResult r = run({"sh", "-c", "echo \"${HEAPLEDGER_OPTIONS-unset}\" \"$LD_PRELOAD\""});
  EXPECT_EQ(r.out, "unset " + library_ + "\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliRunTest, CommandNotFoundIs127) {
  CliResult r = run({"heapledger-no-such-program"});
  EXPECT_EQ(r.exit_code(), 127);
  EXPECT_EQ(r.err, "heapledger run: heapledger-no-such-program: command not found\n");
}

// execvp hands a file the kernel will not run (ENOEXEC) to /bin/sh, which is right for a
// script without "#!" but not for an ELF file (a 32-bit program on a kernel without 32-bit
// support: dash printed 'Syntax error: "(" unexpected' and heapledger a report on dash, a user
// trial's). 126, as bash says; a script without "#!" still runs under sh.
TEST_F(CliRunTest, AFileTheKernelWillNotRunIs126) {
  spit(dir_ / "not_runnable", std::string("\x7f"
                                          "ELF(garbage\n"));
  fs::permissions(dir_ / "not_runnable", fs::perms::owner_all);
  CliResult r = run({"./not_runnable"});
  EXPECT_EQ(r.exit_code(), 126);
  EXPECT_EQ(r.err, "heapledger run: cannot run ./not_runnable: Exec format error\n");
  // A script whose interpreter is not there: "No such file or directory" for a file that was
  // (a user trial's); 126, as bash's "bad interpreter".
  spit(dir_ / "bad_interpreter", "#!/nonexistent/interpreter -x\necho hi\n");
  fs::permissions(dir_ / "bad_interpreter", fs::perms::owner_all);
  r = run({"./bad_interpreter"});
  EXPECT_EQ(r.exit_code(), 126);
  EXPECT_EQ(
      r.err,
      "heapledger run: cannot run ./bad_interpreter: its interpreter /nonexistent/interpreter "
      "is not there\n");
  spit(dir_ / "no_hash_bang", "echo from sh\n");
  fs::permissions(dir_ / "no_hash_bang", fs::perms::owner_all);
  r = run({"./no_hash_bang"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.out, "from sh\n");
}

TEST_F(CliRunTest, MissingLibraryIs125) {
  CliResult r = run({"true"}, {{"HEAPLEDGER_LIBRARY", (dir_ / "nope.so").string()}});
  EXPECT_EQ(r.exit_code(), 125);
  EXPECT_EQ(r.err, "heapledger run: HEAPLEDGER_LIBRARY=" + (dir_ / "nope.so").string() +
                       " is not a file\n");
  // A file that is no shared library: the loader said it could not preload it, and the program
  // ran untracked, status 0.
  // Nor one that is an executable, or an ELF header cut short (a review's).
  spit(dir_ / "text.so", "not a library\n");
  spit(dir_ / "short.so",
       "\x7f"
       "ELF");
  for (const std::string& library :
       {(dir_ / "text.so").string(), (dir_ / "short.so").string(), std::string("/bin/true")}) {
    r = run({"echo", "ran"}, {{"HEAPLEDGER_LIBRARY", library}});
    EXPECT_EQ(r.exit_code(), 125) << library;
    EXPECT_EQ(r.out, "") << library;
    EXPECT_EQ(r.err, "heapledger run: HEAPLEDGER_LIBRARY=" + library +
                         " is not a shared library for this machine\n");
  }
}

TEST_F(CliRunTest, WarnsAboutStaticProgramsAndStillRunsThem) {
  const std::string ldconfig = "/sbin/ldconfig";  // statically linked on glibc systems
  if (!fs::exists(ldconfig)) GTEST_SKIP() << "no " << ldconfig;
  CliResult r = run({ldconfig, "--version"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.err, "heapledger run: " + ldconfig +
                       " is statically linked: the library cannot be "
                       "preloaded and no report will be written\n");
  EXPECT_NE(r.out.find("ldconfig"), std::string::npos);

  spit(dir_ / "script", "#!" + ldconfig + " --version\n");
  fs::permissions(dir_ / "script", fs::perms::owner_all);
  r = run({(dir_ / "script").string()});
  EXPECT_EQ(r.err, "heapledger run: " + (dir_ / "script").string() + " runs " + ldconfig +
                       ", which is statically linked: the library cannot be preloaded and no "
                       "report will be written\n");
}

// The dynamic loader run as a command names no interpreter, as a static program does not, but
// takes LD_PRELOAD for the program it loads: the system's, and another glibc's by its name
// (a user trial's and a review's: "is statically linked ... no report will be written").
TEST_F(CliRunTest, NoWarningForTheLoaderRunAsACommand) {
  const std::string loader = "/lib64/ld-linux-x86-64.so.2";
  if (!fs::exists(loader)) GTEST_SKIP() << "no " << loader;
  CliResult r = run({loader, "--version"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.err, "");
  fs::copy_file(loader, dir_ / "ld-linux-x86-64.so.2");  // a private glibc's, say
  fs::permissions(dir_ / "ld-linux-x86-64.so.2", fs::perms::owner_all);
  r = run({(dir_ / "ld-linux-x86-64.so.2").string(), "--version"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.err, "");
}

TEST_F(CliRunTest, NoWarningForDynamicPrograms) {
  CliResult r = run({"sh", "-c", "true"});
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace heapledger
