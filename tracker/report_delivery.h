// Where the reports go: to stderr as the process started with it (found again if the program
// moved it), or to files written whole (a temporary file renamed into place, %p named, beside a
// report of the same pid from another PID namespace), taking turns on a stream other processes
// share; and the reporter's one-line diagnostics. Part of libheapledger_reporter.so.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

#include "tracker/report_model.h"
#include "tracker/runtime_api.h"

namespace heapledger::detail {

// A report's text, handed to `sink` piece by piece (a JSON report of a compiler's every call site
// is tens of MB: it is not built as one string first). May be called again, and gives the same
// text, when the first place it went to failed.
using Sink = std::function<void(std::string_view)>;
using Producer = std::function<void(const Sink&)>;

// stdout and stderr as the process started with them (the tracker's records, which it keeps up
// to date), and whether the process runs under a seccomp filter.
void set_streams(const StreamIdentity* out, const StreamIdentity* err, bool (*sandboxed)());

// Before a process's reports are delivered: `progress` is bumped as they are written (other
// threads that exit meanwhile wait on it, collect.cc), `writing_to` names the descriptor a write
// waits on, and flush_stdout is ReportRequest's.
void begin_delivery(std::atomic<std::uint64_t>* progress, std::atomic<int>* writing_to,
                    bool flush_stdout);

// "heapledger: ..." lines on stderr as the process started with it. Never destroyed: warnings
// can come after static destructors.
spdlog::logger& diagnostics();
void warn(const char* line);  // "heapledger: warning: line"
void say(const char* line);   // "heapledger: line"

// Writes one report ("text" or "JSON") of `process` to target: "stderr" or a path (%p the pid,
// %% a percent sign). Where it cannot go, a one-line warning and the report on stderr.
void deliver(const char* what, const char* target, const ProcessInfo& process,
             const Producer& text);

}  // namespace heapledger::detail
