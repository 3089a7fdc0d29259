// The interfaces between libheapledger.so and its two private modules, loaded with
// dlopen(RTLD_LOCAL) so that their dependencies never interpose on the program's own symbols:
//   libheapledger_runtime.so  (libunwind), loaded at start when tracking: backtraces;
//   libheapledger_reporter.so (libdw, spdlog, fmt, nlohmann-json), loaded only when there is
//     something to say: a warning, a heap error to abort on, or the exit report. Keeping it out
//     of start-up saves every tracked process a dozen libraries.
// Both sides are built together.
#pragma once

namespace heapledger {
struct Report;
namespace detail {

// What the exit report should do with the model.
struct ReportRequest {
  const char* log_path;   // "stderr", "none" or a path; %p becomes the pid
  const char* json_path;  // "" for none
  bool show_reachable;
  int max_leaks;
  const char* suppressions_path;  // "" for none
  bool errors_only = false;       // on_error=abort: only the error, nothing else
};

struct RuntimeApi {
  int abi_version;
  // Return addresses of the calling thread, innermost first (libunwind, per-thread cache).
  int (*backtrace)(void** frames, int max);
};

struct ReporterApi {
  int abi_version;
  // One diagnostic line on stderr ("heapledger: warning: ...").
  void (*warn)(const char* line);
  // Symbolizes the report's frames in place, then writes the text and JSON reports.
  void (*write_reports)(Report* report, const ReportRequest* request);
};

constexpr int kRuntimeAbiVersion = 2;
constexpr const char* kRuntimeEntry = "heapledger_runtime_api";
constexpr const char* kRuntimeFile = "libheapledger_runtime.so";
constexpr const char* kReporterEntry = "heapledger_reporter_api";
constexpr const char* kReporterFile = "libheapledger_reporter.so";

}  // namespace detail
}  // namespace heapledger
