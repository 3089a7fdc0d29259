// The report model: everything the exit report says, independent of how it is written.
// Built by the tracker at exit, written as text/JSON by the runtime, read back from JSON by the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace heapledger {

// One symbolized frame. Inlined calls expand one address into several frames (innermost first).
struct Frame {
  std::uint64_t address = 0;      // absolute address in the process (return address)
  std::string module;             // absolute path of the ELF object, empty if unknown
  std::uint64_t offset = 0;       // address relative to the module's load bias
  std::optional<std::string> function;  // demangled
  std::optional<std::string> file;
  std::optional<int> line;
};
using Stack = std::vector<Frame>;

struct ProcessInfo {
  std::int64_t pid = 0;
  std::int64_t ppid = 0;
  std::string exe;
  std::vector<std::string> argv;
  double duration_ms = 0;
  // A forked child's: when it was forked, on the clock of every other time in the report, which
  // counts from the start of the process that started (its ancestor's). None for that process.
  std::optional<double> forked_ms;
  // The signal that ended the process once the report was written ("SIGTERM"): a stop signal
  // the program left at its default action, or a crash after its exit. None for an exit.
  std::optional<std::string> signal;
};

struct Summary {
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t bytes_allocated = 0;
  std::uint64_t peak_bytes = 0;
  std::uint64_t peak_blocks = 0;
  double peak_time_ms = 0;
  std::uint64_t live_bytes = 0;
  std::uint64_t live_blocks = 0;
  std::uint64_t leaked_bytes = 0;
  std::uint64_t leaked_blocks = 0;
  std::uint64_t possible_bytes = 0;
  std::uint64_t possible_blocks = 0;
  std::uint64_t reachable_bytes = 0;
  std::uint64_t reachable_blocks = 0;
  std::uint64_t suppressed_bytes = 0;
  std::uint64_t suppressed_blocks = 0;
  std::uint64_t errors = 0;
};

inline constexpr std::uint32_t kNoStackId = 0xFFFFFFFF;
inline constexpr std::size_t kLeakThreadsKept = 16;

// The part of a leak site one thread allocated: its id and name (at its end, or at exit for a
// thread still running; empty: none), if the tracker knew them.
struct LeakThread {
  std::optional<int> thread;
  std::string name;
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
};

// Leaked memory grouped by allocation stack. kind: "unknown" until reachability lands, then
// "definite", "indirect", "possible" or "reachable".
struct Leak {
  std::string kind = "unknown";
  std::uint64_t bytes = 0;
  std::uint64_t blocks = 0;
  double first_ms = 0;
  double last_ms = 0;
  Stack stack;
  // The threads that allocated its blocks, most bytes first: all of them as the reporter builds
  // it; the JSON keeps the first kLeakThreadsKept and thread_count says how many there were.
  std::vector<LeakThread> threads;
  std::uint64_t thread_count = 0;
  // Indirect: where the definitely lost block holding these was allocated (a suppression that
  // matches it hides them too, as in LeakSanitizer). Not in the JSON; empty once read back.
  Stack holder = {};
  // The reporter's own: stack and holder as ids of the tracker's stack table, for as long as it
  // has not copied them out into the two above (it copies only those it shows). Not in the JSON.
  std::uint32_t stack_id = kNoStackId;
  std::uint32_t holder_id = kNoStackId;
};

// A call site holding memory at the peak.
struct PeakSite {
  std::uint64_t bytes = 0;
  std::uint64_t blocks = 0;
  Stack stack;
};

struct HeapError {
  std::string kind;  // double_free | invalid_free | mismatched_free
  std::uint64_t address = 0;
  Stack stack;
  std::optional<Stack> alloc_stack;
  std::optional<Stack> free_stack;
  std::string detail;  // what exactly was wrong, e.g. "sized delete with a different size"
  // An invalid free of a pointer into a live block: that block (alloc_stack is where it was
  // allocated).
  struct Block {
    std::uint64_t address = 0;
    std::uint64_t size = 0;
  };
  std::optional<Block> block;
  // The thread that made the call: its id, and its name then (empty: none).
  std::optional<int> thread;
  std::string thread_name;
  // A double free: the thread of the first free, as the tracker knew it then.
  std::optional<int> free_thread;
  std::string free_thread_name;
};

struct TimelinePoint {
  double t_ms = 0;
  std::uint64_t bytes = 0;
};

// How the exit scan went (not part of the leak numbers; useful when a report looks odd).
struct ScanInfo {
  double milliseconds = 0;
  std::uint64_t threads = 0;          // other threads running at exit
  std::uint64_t threads_stopped = 0;  // of those, stopped for the scan
  std::uint64_t root_bytes = 0;
  std::uint64_t heap_bytes_scanned = 0;
  bool failed = false;  // it could not run: no leak is classified
  // Of those stopped, held asleep in a system call with the scan's signal blocked (stopped by
  // signal): their registers were not read.
  std::uint64_t threads_held = 0;
};

// A suppression that matched, with what it hid.
struct SuppressionHit {
  std::string pattern;
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
};

struct Report {
  std::string schema = "heapledger/1";
  std::string tool_name = "heapledger";
  std::string tool_version;
  ProcessInfo process;
  Summary summary;
  std::vector<Leak> leaks;       // largest first
  std::vector<PeakSite> peak;    // largest first
  std::vector<HeapError> errors;
  std::vector<TimelinePoint> timeline;
  std::optional<ScanInfo> scan;
  std::string scan_failure;  // the scan failed: why ("out of memory", or /proc's absence)
  std::vector<SuppressionHit> suppressions;
  // Still-reachable call sites left out of `leaks` (all are counted in the summary): only the
  // largest are listed (reachable_sites), and a forked child's inherited ones are not, unless
  // show_reachable is set.
  std::uint64_t reachable_sites_omitted = 0;
};

}  // namespace heapledger
