// `heapledger report FILE.json`: reads a JSON report and prints it as text on stdout.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tracker/report_json.h"
#include "tracker/report_text.h"

namespace heapledger::cli {
namespace {

constexpr int kFailed = 2;  // unreadable or invalid report, or stdout not writable

std::string read_all(std::FILE* f) {
  std::string text;
  char buf[1 << 16];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) text.append(buf, n);
  if (std::ferror(f)) throw std::runtime_error(std::strerror(errno));
  return text;
}

// The whole file ("-": stdin). Throws std::runtime_error with the OS error, like cat(1) says it.
std::string read_file(const std::string& path) {
  if (path == "-") return read_all(stdin);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw std::runtime_error(std::strerror(errno));
  return read_all(f.get());
}

}  // namespace

CLI::App* add_report(CLI::App& app, ReportArgs& args) {
  CLI::App* cmd = app.add_subcommand("report", "Print a JSON report (from --json) as text");
  cmd->add_option("file", args.file, "The JSON report; - reads stdin")
      ->required()
      ->type_name("FILE.json");
  cmd->add_flag("--show-reachable", args.show_reachable,
                "List still-reachable blocks too instead of only counting them");
  // CLI11 would read -1 into the unsigned count, as "all".
  const CLI::Validator not_negative(
      [](std::string& value) { return value.starts_with('-') ? "must be 0 or more, not " + value : std::string(); },
      "");
  cmd->add_option("--max-leaks", args.max_leaks, "Leak sites shown with stacks; 0: all")
      ->check(not_negative)
      ->capture_default_str();
  cmd->add_option("--max-frames", args.max_frames, "Frames shown per stack; 0: all")
      ->check(not_negative)
      ->capture_default_str();
  return cmd;
}

int report_command(const ReportArgs& args) {
  Report report;
  try {
    report = report_from_json(read_file(args.file));
  } catch (const std::exception& e) {
    fmt::print(stderr, "heapledger: {}: {}\n", args.file == "-" ? "stdin" : args.file, e.what());
    return kFailed;
  }
  TextOptions options;
  options.max_leaks = args.max_leaks;
  options.rest_hint = "--max-leaks 0 lists them all";
  options.max_frames = args.max_frames;
  options.show_reachable = args.show_reachable;
  std::string text = render_text(report, options);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    fmt::print(stderr, "heapledger: cannot write the report: {}\n", std::strerror(errno));
    return kFailed;
  }
  return 0;
}

}  // namespace heapledger::cli
