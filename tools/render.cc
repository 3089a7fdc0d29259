// `heapledger report FILE.json...`: reads JSON reports and prints each as text on stdout; with
// --leak-exitcode or --error-exitcode, its exit status says whether any had leaks or heap errors
// (a CI gate over the reports of every process of a run).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tools/validators.h"
#include "tracker/report_json.h"
#include "tracker/report_text.h"
#include "tracker/suppressions.h"

namespace heapledger::cli {
namespace {

constexpr int kFailed = 2;  // unreadable or invalid report, or stdout not writable

// The report in the file ("-": stdin), read only as far as it is JSON. Throws
// std::runtime_error with the OS error, like cat(1) says it, or why it is no report.
Report read_report(const std::string& path) {
  if (path == "-") return report_from_json(stdin);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw std::runtime_error(std::strerror(errno));
  return report_from_json(f.get());
}

}  // namespace

CLI::App* add_report(CLI::App& app, ReportArgs& args) {
  CLI::App* cmd = app.add_subcommand("report", "Print a JSON report (from --json) as text");
  cmd->add_option("file", args.files, "The JSON reports, printed one after another; - reads stdin")
      ->required()
      ->type_name("FILE.json...");
  // The processes of a whole run (make -j under heapledger run: 209 reports, 16,000 lines of
  // text, nearly all of processes with nothing to fix: a user trial).
  cmd->add_flag("--quiet", args.quiet,
                "Print only the reports with leaks or heap errors, as the library's quiet=1 "
                "(one line on stderr counts the others)");
  cmd->add_flag("--show-reachable", args.show_reachable,
                "List still-reachable blocks too instead of only counting them");
  cmd->add_option("--max-leaks", args.max_leaks, "Leak sites shown with stacks; 0: all")
      ->check(count())
      ->capture_default_str();
  cmd->add_option("--max-frames", args.max_frames, "Frames shown per stack; 0: all")
      ->check(count())
      ->capture_default_str();
  cmd->add_option("--leak-exitcode", args.leak_exitcode,
                  "Exit with N if a report has leaks (0-255; 0: exit 0), as its process's "
                  "leak_exitcode would have")
      ->type_name("N")
      ->check(exit_status());
  cmd->add_option("--error-exitcode", args.error_exitcode,
                  "Exit with N if a report has heap errors (0-255); wins over --leak-exitcode")
      ->type_name("N")
      ->check(exit_status());
  // A build's reports hold its compilers' and linkers' leaks: the gate over them needed a
  // suppressions file given to every process at run time (a user trial's make under heapledger).
  cmd->add_option("--suppressions", args.suppressions,
                  "Hide leaks matching the leak:PATTERN lines of FILE (LeakSanitizer format) in "
                  "each report, as the library's suppressions= does; the gates see what is left")
      ->type_name("FILE");
  return cmd;
}

int report_command(const ReportArgs& args) {
  TextOptions options;
  options.max_leaks = args.max_leaks;
  options.rest_hint = "--max-leaks 0 lists them all";
  options.max_frames = args.max_frames;
  options.show_reachable = args.show_reachable;
  Suppressions suppressions;
  if (args.suppressions) {
    // A gate whose suppressions were not read would fail on what they hide, or pass on a typo's
    // silence: a file that cannot be read stops it.
    if (std::FILE* f = std::fopen(args.suppressions->c_str(), "r")) {
      std::fclose(f);
    } else {
      fmt::print(stderr, "heapledger report: cannot read the suppressions file {}: {}\n",
                 *args.suppressions, std::strerror(errno));
      return kFailed;
    }
    std::vector<std::string> warnings;
    suppressions.load(*args.suppressions, &warnings);
    for (const std::string& w : warnings) fmt::print(stderr, "heapledger report: warning: {}\n", w);
  }
  bool leaks = false, errors = false;
  std::size_t clean = 0, unreadable = 0;
  for (const std::string& file : args.files) {
    Report report;
    try {
      report = read_report(file);
    } catch (const std::exception& e) {
      fmt::print(stderr, "heapledger report: {}: {}\n", file == "-" ? "stdin" : file, e.what());
      ++unreadable;
      continue;  // the others are still shown
    }
    // On top of the process's own (an indirect leak goes with its holder only where the process
    // applied them: the JSON does not say which block held it).
    suppressions.apply(report);
    // As the process decided it, and --suppressions: after suppressions.
    leaks = leaks || report.summary.leaked_blocks > 0;
    errors = errors || report.summary.errors > 0;
    if (args.quiet && report.summary.leaked_blocks == 0 && report.summary.errors == 0) {
      ++clean;
      continue;
    }
    std::string text = render_text(report, options);
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
        std::fflush(stdout) != 0) {
      fmt::print(stderr, "heapledger report: cannot write the report: {}\n", std::strerror(errno));
      return kFailed;
    }
  }
  // Of the reports read: one that could not be read is not one with something to fix (it was
  // counted as one: a user trial), and its own line said so.
  const std::size_t read = args.files.size() - unreadable;
  if (clean > 0)
    fmt::print(
        stderr,
        "heapledger report: {} of {} {} nothing to fix: no leaks, no heap errors (not shown: "
        "--quiet){}\n",
        clean, read, read == 1 ? "report had" : "reports had",
        unreadable ? fmt::format("; {} could not be read", unreadable) : "");
  if (unreadable) return kFailed;
  if (args.error_exitcode != 0 && errors) return args.error_exitcode;
  if (args.leak_exitcode != 0 && leaks) return args.leak_exitcode;
  return 0;
}

}  // namespace heapledger::cli
