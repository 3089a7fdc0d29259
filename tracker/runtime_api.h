// The interfaces between libheapledger.so and its two private modules, loaded with
// dlopen(RTLD_LOCAL) so that their dependencies never interpose on the program's own symbols:
//   libheapledger_runtime.so  (libunwind), loaded at start when tracking: backtraces;
//   libheapledger_reporter.so (libdw, spdlog, fmt, nlohmann-json), loaded only when there is
//     something to say: a warning, a heap error to abort on, or the exit report. Keeping it out
//     of start-up saves every tracked process a dozen libraries.
// Both sides are built together.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heapledger {
namespace detail {

// What stderr was when the process started. Programs close or replace fd 2 (coreutils close it
// at exit; daemons reopen it onto a file), and the report must neither vanish into a closed fd nor
// land in a file the program reopened as fd 2.
struct StreamIdentity {
  bool known;
  bool closed;  // the descriptor was not open when the process started
  bool regular;  // a regular file
  std::uint64_t dev, ino;
  char path[512];  // where /proc/self/fd/N pointed; reopenable if absolute (a tty, a file)
  // A regular file's: a copy of the descriptor (close-on-exec, at 1000 or half the fd limit if
  // lower), or -1; of stdout only when a report is to go there. Reopened by path, the file would
  // be written at its end, not at the offset the program and its parent share: a shell's next
  // write there went over the report (`{ sort /dev/null; echo x >&2; } 2> f`: sort closes stderr
  // at exit, and stdout: `log=stdout` sent the report of each such program to stderr, a user
  // trial). Only for a regular file: a copy of a pipe would keep its reader from seeing the end.
  int fd;
  // What the program itself put on the descriptor since it started (dup2 or dup3 onto it,
  // freopen of stderr), zero for nothing: a server that sends its stderr to its log
  // (PostgreSQL's log collector, nginx's error_log). Where the stderr the process started with
  // cannot be reached any more (a pipe: no copy is kept of one), our lines go to that file while
  // fd 2 still is it. A file that only landed on fd 2, opened while the descriptor was free, is
  // not set here: it may be the program's data. Stderr only (tracker::note_stderr_set).
  std::atomic<std::uint64_t> set_dev{0}, set_ino{0};
  std::atomic<std::uint64_t> set_birth_ns{0};  // its birth time, where the file system keeps one
  // Whether a line saying why our lines go to that file went there (say_why_here): once a
  // process.
  mutable std::atomic<bool> said_why{false};
};

// What the exit report should do with the model.
struct ReportRequest {
  const char* log_path;   // "stderr", "none" or a path; %p becomes the pid
  const char* json_path;  // "" for none
  bool show_reachable;
  int max_leaks;
  int reachable_sites;  // the largest still-reachable sites listed (unless show_reachable)
  const char* suppressions_path;  // "" for none
  bool errors_only = false;       // on_error=abort: only the error, nothing else
  bool quiet = false;             // no text report when nothing leaked and no misuse was seen
  // What stdio holds of the program's stdout may be written before a report that goes where
  // stdout goes: the process is in exit(), which writes it after the report anyway. Not on
  // _exit(), quick_exit() or a signal, where the C library drops it.
  bool flush_stdout = false;
  std::atomic<std::uint64_t>* progress = nullptr;  // bumped as the writer goes (threads wait on it)
  std::atomic<int>* writing_to = nullptr;          // the descriptor a write is on now, else -1
};

// A frame a signal interrupted (RuntimeApi::interrupted_frames).
struct InterruptedFrame {
  static constexpr int kRegisters = 15;  // rax..r15 but rsp
  std::uintptr_t sp, ip, rax;
  std::uintptr_t regs[kRegisters];
  int n_regs;
};

struct RuntimeApi {
  int abi_version;
  // Return addresses of the calling thread, innermost first (libunwind, per-thread cache).
  int (*backtrace)(void** frames, int max);
  // A module was unloaded: libunwind forgets what it cached by address (another library can be
  // loaded there next).
  void (*forget_unloaded)();
  // The callee-saved registers (rbx, rbp, r12-r15) as the calling thread's frame whose stack
  // pointer is sp will find them when it resumes; returns how many were read (0: no such frame).
  int (*saved_registers)(std::uintptr_t sp, std::uintptr_t* out);
  // The frames that signals interrupted, walking out from `context` (a ucontext_t that
  // getcontext() filled in a frame still live on this thread): each one's stack pointer,
  // instruction pointer and general registers as the kernel saved them. Innermost first; past max,
  // the last slot holds the outermost (the one on the thread's own stack, where signals nest on
  // an alternate stack). Returns how many slots were filled.
  int (*interrupted_frames)(const void* context, InterruptedFrame* out, int max);
};

// What libheapledger.so knows at exit, as plain data (it does not link the C++ library, so it
// hands the reporter arrays and callbacks, and the reporter builds the report model).
constexpr std::uint32_t kNoHolder =
    (1u << 24) - 1;       // above every stack id (StackTable::kMaxStacks)
// Block times as a record keeps them (Record, 40 bits): they wrap past this, 12.7 days.
constexpr std::uint64_t kSiteTimeLimitUs = std::uint64_t{1} << 40;
struct ExitSite {         // live blocks of one allocation stack and one reachability class
  std::uint32_t stack;
  std::uint8_t reach;     // Reach (leak_scan.h); 0xFF: not classified (the scan could not run)
  std::uint64_t bytes, blocks, first_us, last_us;
  std::uint32_t holder;  // indirect: the stack of the definite leak holding them; else kNoHolder
  std::uint32_t first_share, n_shares;  // its threads' shares: ExitData::shares[first, +n)
};
// The blocks of a site one thread allocated (a record's thread number: ExitData::thread names it).
struct ExitThreadShare {
  std::uint32_t thread;
  std::uint64_t blocks, bytes;
};
struct ExitPeakSite {
  std::uint32_t stack;
  std::uint64_t bytes, blocks;
};
struct ExitError {
  std::uint8_t kind;      // 0 double_free, 1 invalid_free, 2 mismatched_free
  bool has_alloc, has_free;
  std::uintptr_t address;
  std::uint32_t stack, alloc_stack, free_stack;
  const char* detail;
  std::uint8_t allocated, released;  // a mismatched free's AllocKinds (kInternal: none)
  std::uintptr_t block;               // an invalid free into a live block: its start (0: none)
  std::uint64_t block_size;           // and its size
  const char* module;  // an invalid free into a loaded module's image: its path (null: none)
  std::int32_t tid;    // the thread that made the call (0: not known)
  const char* thread_name;  // its name then (empty: none)
  std::uint64_t released_size;  // a sized delete's size (0: none)
  std::int32_t free_tid;        // a double free: the first free's thread (0: not known)
  const char* free_thread_name;  // and its name (empty: none)
};
struct ExitPoint {
  std::uint64_t t_us;
  std::int64_t bytes;
};
struct ExitFrame {
  std::uintptr_t address;
  const char* module;     // absolute path, "" if unknown
  std::uintptr_t bias;    // the module's load bias
};
struct ExitData {
  double duration_ms;
  // A forked child's time of fork, on its blocks' clock (ExitSite's); < 0 for the process that
  // was started.
  std::int64_t forked_us;
  int signal;  // the signal that ends the process once the report is written; 0: none
  std::uint64_t allocations, frees, bytes_allocated;
  std::uint64_t peak_bytes, peak_blocks, peak_time_us;
  const ExitSite* sites;  // every live block, grouped
  std::size_t n_sites;
  const ExitThreadShare* shares;  // each site's, by thread number
  std::size_t n_shares;
  // The id and name (15 bytes and a zero) of a thread number; false: not known.
  bool (*thread)(std::uint32_t number, std::int32_t* tid, char name[16]);
  const ExitPeakSite* peak;  // the largest sites at the peak, largest first
  std::size_t n_peak;
  const ExitError* errors;
  std::size_t n_errors;
  std::uint64_t errors_total;
  const ExitPoint* timeline;
  std::size_t n_timeline;
  bool scanned;
  // The exit scan could not run (out of memory): no leak is classified, and what was live at exit
  // is the tracker's running count.
  bool scan_failed;
  // Why, if not for want of memory: an errno of opening /proc/self/maps (0: out of memory).
  int scan_maps_error;
  std::uint64_t live_bytes, live_blocks;
  double scan_ms;
  std::uint64_t scan_threads, scan_threads_stopped, scan_threads_held, scan_root_bytes,
      scan_heap_bytes;
  // Frames of an interned stack, innermost first: returns the depth, fills up to max frames.
  std::uint32_t (*stack)(std::uint32_t id, ExitFrame* frames, std::uint32_t max);
  // The command line as the program started, words NUL-terminated (null: read it now).
  const char* cmdline;
  std::size_t cmdline_len;
  // The program's absolute path as the loaded objects' first scan found it (null or "": unknown),
  // for where /proc/self/exe cannot be read at exit.
  const char* exe;
  // /proc/self/maps as the exit scan read it, maps_len bytes (null: none read; the symbolizer
  // reads it itself then).
  const char* maps;
  std::size_t maps_len;
};

// What the report concluded, after suppressions: the exit status depends on it.
struct ReportOutcome {
  std::uint64_t leaked_blocks = 0;
  std::uint64_t errors = 0;
};

struct ReporterApi {
  int abi_version;
  // Called once, right after loading: stdout and stderr as the process started with them, and
  // whether the process is sandboxed (see write_signals.h).
  void (*set_streams)(const StreamIdentity* out, const StreamIdentity* err, bool (*sandboxed)());
  // One diagnostic line on stderr ("heapledger: warning: ...").
  void (*warn)(const char* line);
  // One line on stderr that is not a warning ("heapledger: ...").
  void (*say)(const char* line);
  // Builds the report, applies suppressions, symbolizes, writes the text and JSON reports.
  void (*write_reports)(const ExitData* data, const ReportRequest* request, ReportOutcome* out);
};

constexpr int kRuntimeAbiVersion = 25;
constexpr const char* kRuntimeEntry = "heapledger_runtime_api";
constexpr const char* kRuntimeFile = "libheapledger_runtime.so";
constexpr const char* kReporterEntry = "heapledger_reporter_api";
constexpr const char* kReporterFile = "libheapledger_reporter.so";

}  // namespace detail
}  // namespace heapledger
