// The interface between libheapledger.so and libheapledger_runtime.so, which the library loads
// with dlopen(RTLD_LOCAL) so that the runtime's dependencies (libunwind, libdw, spdlog, fmt,
// nlohmann-json) never interpose on the program's own symbols. Both sides are built together.
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
  // One diagnostic line on stderr ("heapledger: warning: ...").
  void (*warn)(const char* line);
  // Symbolizes the report's frames in place, then writes the text and JSON reports.
  void (*write_reports)(Report* report, const ReportRequest* request);
};

constexpr int kRuntimeAbiVersion = 1;
constexpr const char* kRuntimeEntry = "heapledger_runtime_api";
constexpr const char* kRuntimeFile = "libheapledger_runtime.so";

}  // namespace detail
}  // namespace heapledger
