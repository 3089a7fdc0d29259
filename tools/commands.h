// The heapledger CLI's commands. Each command adds its subcommand and flags to the CLI11 app
// (add_*), and runs once parsing succeeded (*_command), returning the process exit status.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace heapledger::cli {

struct RunArgs {
  std::optional<std::string> json;          // --json FILE
  std::optional<std::string> log;           // --log FILE|stderr|none
  std::vector<std::string> options;         // --option KEY=VALUE, verbatim
  std::optional<int> leak_exitcode;         // --leak-exitcode N
  std::optional<int> error_exitcode;        // --error-exitcode N
  bool started_only = false;                // --started-only
  std::optional<std::string> suppressions;  // --suppressions FILE
  bool show_reachable = false;              // --show-reachable
  bool quiet = false;                       // --quiet
  std::optional<std::string> on_error;      // --on-error report|abort
  std::vector<std::string> command;         // PROG ARGS...
};

struct ReportArgs {
  std::vector<std::string> files;  // JSON reports, "-" for stdin
  bool show_reachable = false;
  std::size_t max_leaks = 25;
  std::size_t max_frames = 12;
  int leak_exitcode = 0;   // exit status when a report has leaks (0: none)
  int error_exitcode = 0;  // when one has heap errors; wins over leak_exitcode
  bool quiet = false;      // only the reports with leaks or heap errors
  std::optional<std::string> suppressions;  // --suppressions FILE: applied to each report read
};

CLI::App* add_run(CLI::App& app, RunArgs& args);
int run_command(const RunArgs& args);

CLI::App* add_report(CLI::App& app, ReportArgs& args);
int report_command(const ReportArgs& args);

// `heapledger options`: the library's HEAPLEDGER_OPTIONS keys, defaults and help lines.
CLI::App* add_options(CLI::App& app);
int options_command();

// Exit statuses of `run` when the program itself did not run (as env(1) and timeout(1) use them).
inline constexpr int kToolFailed = 125;
inline constexpr int kCannotExecute = 126;
inline constexpr int kNotFound = 127;

}  // namespace heapledger::cli
