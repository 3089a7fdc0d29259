// The exit report, first half: classifies the live blocks, groups them by stack and class, and
// takes the counters, peak call sites, errors and timeline, all as plain arrays in memory mapped
// here. The reporter module builds the report model from them, symbolizes and writes it. Nothing
// here uses the C++ library, so libheapledger.so does not load it into C programs.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shim/kernel_call.h"
#include "shim/os.h"
#include "shim/space_limit.h"
#include "shim/stop_signals.h"
#include "tracker/fast_unwind.h"
#include "tracker/leak_scan.h"
#include "tracker/state.h"
#include "tracker/tracker.h"
#include "tracker/write_signals.h"

extern "C" int __cxa_atexit(void (*fn)(void*), void* arg, void* dso) noexcept;
extern "C" int __cxa_at_quick_exit(void (*fn)(), void* dso) noexcept;

namespace heapledger::detail::tracker {
namespace {

constexpr std::uint8_t kUnclassified = 0xFF;

// An array in internal memory that frees itself.
template <class T>
class Scratch {
 public:
  explicit Scratch(std::size_t n) : n_(n ? n : 1), data_(static_cast<T*>(os::map_internal(n_ * sizeof(T)))) {}
  ~Scratch() {
    if (data_) os::unmap_internal(data_, n_ * sizeof(T));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  std::size_t n_;
  T* data_;
};

std::uint32_t stack_frames(std::uint32_t id, ExitFrame* frames, std::uint32_t max) {
  const StackRecord* r = g_state.stacks.get(id);
  if (!r) return 0;
  std::uint32_t n = std::min(r->depth, max);
  for (std::uint32_t i = 0; i < n; ++i) {
    frames[i] = ExitFrame{r->frames()[i], "", 0};
    if (r->modules()[i] == ModuleMap::kUnknown) continue;
    Module m = g_state.modules.get(r->modules()[i]);
    frames[i].module = m.path ? m.path : "";
    frames[i].bias = m.bias;
  }
  return n;
}

// The dynamic linker's allocations (TLS vectors, link maps) are roots: they are found by the
// module of their allocating frame.
// Whether the module's file name (after the last '/') starts with prefix.
bool module_named(const char* path, const char* prefix) {
  const char* slash = path ? std::strrchr(path, '/') : nullptr;
  return slash && std::strncmp(slash + 1, prefix, std::strlen(prefix)) == 0;
}

RootPolicy root_policy(RootPolicy::Range* dead, std::size_t max_dead, RootPolicy::Range* modules,
                       std::size_t max_modules) {
  RootPolicy policy;
  {
    DeadStacks& d = g_state.dead_stacks;
    SpinGuard guard(d.lock);
    policy.n_dead_stacks = std::min<std::size_t>(d.count, max_dead);
    for (std::size_t i = 0; i < policy.n_dead_stacks; ++i) dead[i] = d.ranges[i];
    policy.dead_stacks = dead;
  }
  policy.ended_at = [](pid_t tid) { return g_state.ended_threads.marked_at(tid); };
  policy.self_lo = g_state.self_start;
  policy.self_hi = g_state.self_end;
  policy.stacks = &g_state.stacks;
  policy.modules = modules;
  g_state.modules.sync();  // the loaded ones: an unloaded module's range may hold a stack now
  for (std::size_t m = 0; m < g_state.modules.size(); ++m) {
    Module mod = g_state.modules.get(static_cast<std::uint16_t>(m));
    if (module_named(mod.path, "ld-linux") && policy.n_root_modules < 8)
      policy.root_modules[policy.n_root_modules++] = static_cast<std::uint16_t>(m);
    if (mod.loaded && policy.n_modules < max_modules)
      modules[policy.n_modules++] = {mod.start, mod.end};
  }
  return policy;
}

// Sorts the scanned blocks by (stack, class, holder, thread) and folds each run into one site,
// and each thread's part of it into one share (shares has room for one a block; null: none kept).
std::size_t group_sites(ScannedBlock* blocks, std::size_t n, ExitSite* sites,
                        ExitThreadShare* shares, std::size_t* n_shares) {
  std::sort(blocks, blocks + n, [](const ScannedBlock& a, const ScannedBlock& b) {
    if (a.stack != b.stack) return a.stack < b.stack;
    if (a.reach != b.reach) return a.reach < b.reach;
    return a.holder != b.holder ? a.holder < b.holder : a.thread < b.thread;
  });
  std::size_t count = 0, n_share = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const ScannedBlock& b = blocks[i];
    if (b.kind == AllocKind::kInternal) continue;
    auto reach = static_cast<std::uint8_t>(b.reach);
    ExitSite* last = count ? &sites[count - 1] : nullptr;
    if (!last || last->stack != b.stack || last->reach != reach || last->holder != b.holder)
      last = &(sites[count++] = ExitSite{b.stack, reach, 0, 0, ~std::uint64_t{0}, 0,
                                         static_cast<std::uint32_t>(b.holder),
                                         static_cast<std::uint32_t>(n_share), 0});
    last->bytes += b.size;
    last->blocks += 1;
    last->first_us = std::min<std::uint64_t>(last->first_us, b.time_us);
    last->last_us = std::max<std::uint64_t>(last->last_us, b.time_us);
    if (!shares) continue;  // no room for them: the sites without their threads
    const auto thread = static_cast<std::uint32_t>(b.thread);
    if (last->n_shares == 0 || shares[n_share - 1].thread != thread) {
      shares[n_share++] = ExitThreadShare{thread, 0, 0};
      ++last->n_shares;
    }
    shares[n_share - 1].blocks += 1;
    shares[n_share - 1].bytes += b.size;
  }
  *n_shares = n_share;
  return count;
}

// The id and name of a thread number, for the reporter.
bool thread_named(std::uint32_t number, std::int32_t* tid, char name[16]) {
  pid_t id = 0;
  if (!g_state.threads.find(number, &id, name)) return false;
  *tid = id;
  return true;
}

// The call sites holding the most memory at the peak, largest first: what each saved when it
// first changed after the peak, or holds now if it has not changed since (see Peak). The peak is
// taken here, with its sites, not before the leak scan: threads that run on through the report
// can make a new one meanwhile (a review's: sites summed to 4-22% over the peak shown).
std::size_t peak_sites(ExitData* d, ExitPeakSite* out, std::size_t max) {
  const Peak& pk = g_state.peak;
  const auto peak = static_cast<std::uint64_t>(pk.bytes.load(std::memory_order_relaxed));
  d->peak_bytes = peak;
  d->peak_blocks = static_cast<std::uint64_t>(pk.blocks.load(std::memory_order_relaxed));
  d->peak_time_us = pk.time_us.load(std::memory_order_relaxed);
  std::size_t n = 0;
  const std::uint32_t stacks = g_state.stacks.size();
  for (std::uint32_t id = 0; peak != 0 && id < stacks; ++id) {
    const StackRecord* r = g_state.stacks.get(id);
    if (!r) continue;
    std::int64_t bytes, blocks;
    if (!r->held_at(peak, &bytes, &blocks)) {
      bytes = r->live_bytes.load(std::memory_order_relaxed);
      blocks = r->live_blocks.load(std::memory_order_relaxed);
    }
    if (bytes <= 0) continue;
    ExitPeakSite site{id, static_cast<std::uint64_t>(bytes), static_cast<std::uint64_t>(blocks)};
    auto by_bytes = [](const ExitPeakSite& a, const ExitPeakSite& b) { return a.bytes > b.bytes; };
    if (n < max) {  // keep the top `max` as a min-heap on bytes
      out[n++] = site;
      std::push_heap(out, out + n, by_bytes);
    } else if (max && site.bytes > out[0].bytes) {
      std::pop_heap(out, out + n, by_bytes);
      out[n - 1] = site;
      std::push_heap(out, out + n, by_bytes);
    }
  }
  std::sort_heap(out, out + n, [](const ExitPeakSite& a, const ExitPeakSite& b) { return a.bytes > b.bytes; });
  return n;
}

ExitError exit_error(const Errors::Entry& e) {
  return ExitError{static_cast<std::uint8_t>(e.kind),
                   e.has_alloc,
                   e.has_free,
                   e.address,
                   e.stack,
                   e.alloc_stack,
                   e.free_stack,
                   e.detail,
                   static_cast<std::uint8_t>(e.allocated),
                   static_cast<std::uint8_t>(e.released),
                   e.block,
                   e.block_size,
                   e.module,
                   static_cast<std::int32_t>(e.tid),
                   e.thread_name,
                   e.released_size,
                   static_cast<std::int32_t>(e.free_tid),
                   e.free_thread_name};
}

std::size_t copy_errors(ExitError* out) {
  Errors& e = g_state.errors;
  SpinGuard guard(e.lock);
  for (std::uint32_t i = 0; i < e.kept; ++i) {
    const Errors::Entry& x = e.entries[i];
    out[i] = exit_error(x);
  }
  return e.kept;
}

// *duration_ms: the run's length, read under the timeline's lock. Threads that run on while the
// report is begun (and after the scan) add points until then, and one read before came earlier
// than the last of them (a program stopped by a signal while its threads allocated).
std::size_t copy_timeline(ExitPoint* out, double* duration_ms) {
  Timeline& tl = g_state.timeline;
  SpinGuard guard(tl.lock);
  *duration_ms = static_cast<double>(now_us()) / 1000.0;
  for (std::uint32_t i = 0; i < tl.count; ++i) out[i] = ExitPoint{tl.points[i].t_us, tl.points[i].bytes};
  // A change skipped since the last point, and none after it: the total since then is the one
  // at exit (but for changes too small to be due).
  const std::uint64_t skipped = tl.skipped_us.load(std::memory_order_relaxed);
  if (skipped == 0 || tl.count == 0 || skipped - 1 < tl.points[tl.count - 1].t_us) return tl.count;
  const std::int64_t live = g_state.counters.live.estimate();
  if (!Timeline::moved(live, tl.points[tl.count - 1].bytes)) return tl.count;
  out[tl.count] = ExitPoint{skipped - 1, live};
  return tl.count + 1;
}

// The signal that ends the process once the report is written (not leak_exitcode): 0 for none.
std::atomic<int> g_dying{0};

ExitData base_data() {
  ExitData d{};
  CountTotals c = count_totals();
  d.duration_ms = static_cast<double>(now_us()) / 1000.0;
  d.forked_us = g_state.forked_at_us;
  d.signal = g_dying.load();
  d.allocations = c.allocations;
  d.frees = c.frees;
  d.bytes_allocated = c.bytes_allocated;
  d.peak_bytes = static_cast<std::uint64_t>(g_state.peak.bytes.load());
  d.peak_blocks = static_cast<std::uint64_t>(g_state.peak.blocks.load());
  d.peak_time_us = g_state.peak.time_us.load();
  d.stack = stack_frames;
  d.cmdline = g_state.cmdline;
  d.cmdline_len = g_state.cmdline_len;
  d.exe = main_program_path();
  return d;
}

ReportRequest request() {
  const Options& o = g_state.options;
  ReportRequest req{o.log,         o.json, o.show_reachable, o.max_leaks, o.reachable_sites,
                    o.suppressions};
  req.progress = &g_state.report_progress;
  req.writing_to = &g_state.report_writing_to;
  req.quiet = o.quiet;
  req.flush_stdout = g_state.stdio_flushed_after.load();
  return req;
}

// Whether leak_exitcode and error_exitcode apply in this process: with exitcode_pid, only in that
// one (its children, a leaky tool a test runs among them, keep their own status).
bool exit_status_is_ours() {
  const int only_in = g_state.options.exitcode_pid;
  return only_in == 0 || only_in == static_cast<int>(getpid());
}

// Nothing asked of the exit report: no text, no JSON, no exit status depending on it.
bool report_wanted() {
  const Options& o = g_state.options;
  return std::strcmp(o.log, "none") != 0 || o.json[0] ||
         (exit_status_is_ours() && (o.leak_exitcode || o.error_exitcode));
}

// The reporter (libdw reading debug information) needs address space of its own: under a limit
// the program has nearly used up, libdw ran out mid-report and ended the process, through its
// error(), which in git is git's own function (a crash: `git --version` under ulimit -v 2700000,
// with 19.7 MB left here; 29.9 MB was enough for it, 28 MB for tests/programs/leak_malloc).
constexpr std::size_t kReporterRoom = std::size_t{24} << 20;
// The same for its writable memory under a data limit (ulimit -d): 6 to 9 MiB for a small C
// program, measured by a temporary print of the room left (loading it with 5.9 MiB left ended the
// process in the loader: "cannot allocate memory for thread-local data").
constexpr std::size_t kReporterDataRoom = std::size_t{12} << 20;

// With no report written, the exit status still fails closed: every error counts, and every
// definite or indirect leak (every live block, if the scan failed), none suppressed. Where
// nothing is suppressed, that is what the reporter decides too.
void outcome_without_report(const ExitData& data, ReportOutcome* outcome) {
  outcome->errors = data.errors_total;
  if (data.scan_failed) {
    outcome->leaked_blocks = data.live_blocks;
    return;
  }
  for (std::size_t i = 0; i < data.n_sites; ++i)
    if (data.sites[i].reach == static_cast<std::uint8_t>(Reach::kDefinite) ||
        data.sites[i].reach == static_cast<std::uint8_t>(Reach::kIndirect))
      outcome->leaked_blocks += data.sites[i].blocks;
}

// Room kept for the report under a hard limit on address space or data (`ulimit -v` and
// `ulimit -d` set both the soft and the hard one, so raising the soft one finds nothing): a
// program that used its limit up left none for the reporter module, libdw and the report's stack,
// and the report was lost ("no report: N MiB of address space left" under ulimit -v; under
// ulimit -d "no report: the reporter module could not be loaded", a review's). Mappings of our
// own, never written, given back as the report begins (ReportRoom): under an address-space limit
// 32 MiB without access (the reporter maps about 24 MiB, libdw's files among them), under a data
// limit 16 MiB writable, which that limit counts (the reporter's data, its heap and the files
// libdw maps privately: 6 to 9 MiB for a small program). Each costs the program as much of its
// limit, and no memory.
constexpr std::size_t kSpaceReserve = std::size_t{32} << 20, kDataReserve = std::size_t{16} << 20;
std::atomic<void*> g_space_reserve{nullptr}, g_data_reserve{nullptr};

void give_back_report_room() {
  if (void* p = g_space_reserve.exchange(nullptr)) os::unmap_internal(p, kSpaceReserve);
  if (void* p = g_data_reserve.exchange(nullptr)) os::unmap_internal(p, kDataReserve);
}

// A program that used up its file descriptors (it leaks them, or lowered its limit to what it
// uses) left none for the report: the leak scan reads /proc (the threads to stop, the mappings
// that hold roots), and loading the reporter, reading debug information (libdw keeps a module's
// file open while it symbolizes, so a hundred modules take a hundred) and writing the report
// each need descriptors too (the report was lost: "cannot load ...: Too many open files"). The
// same for address space and data: one that lowered its soft limits to what it uses left none
// for the reporter module and libdw. From the scan to the written report, both soft limits are
// raised to the hard ones, then put back; the room kept for the report (above) is given back first.
// The limits are the process's: a thread running on meanwhile, or a child forked then, sees them
// raised (README). Counting the free descriptors first would need them taken from under the
// program's running threads (a review saw a thread's open fail with EMFILE in 26 of 100 runs).
class ReportRoom {
 public:
  ReportRoom() {
    give_back_report_room();
    const int saved = errno;
    raised_ = getrlimit(RLIMIT_NOFILE, &before_) == 0 && before_.rlim_cur < before_.rlim_max;
    if (raised_) {
      const rlimit all{before_.rlim_max, before_.rlim_max};
      raised_ = setrlimit(RLIMIT_NOFILE, &all) == 0;
    }
    space_limit::raise_for_report(&space_before_);
    errno = saved;
  }
  ~ReportRoom() {
    const int saved = errno;
    space_limit::restore_after_report(space_before_);
    if (raised_) setrlimit(RLIMIT_NOFILE, &before_);
    errno = saved;
  }
  ReportRoom(const ReportRoom&) = delete;
  ReportRoom& operator=(const ReportRoom&) = delete;

 private:
  rlimit before_{};
  space_limit::Saved space_before_{};
  bool raised_ = false;
};

void deliver_report(const ExitData& data, const ReportRequest& req, ReportOutcome* outcome) {
  // Nothing to write and no suppressions to match: only the exit status is asked for, and the
  // tracker's data decide it as the reporter would (without loading it, libdw and all).
  if (std::strcmp(req.log_path, "none") == 0 && req.json_path[0] == 0 &&
      !(req.suppressions_path && *req.suppressions_path))
    return outcome_without_report(data, outcome);
  // quiet, no JSON, and nothing to fix before suppressions (which only take leaks away): the
  // text report would not be written either.
  if (req.quiet && req.json_path[0] == 0) {
    ReportOutcome before;
    outcome_without_report(data, &before);
    if (before.leaked_blocks == 0 && before.errors == 0) return void(*outcome = before);
  }
  // Counted first: what no report, or a reporter that runs out of memory before it has counted,
  // leaves (the exit status for CI was the program's own, "no leaks", a gate open).
  outcome_without_report(data, outcome);
  // No room for the reporter under a limit (the room kept for it could not be had, or was taken
  // by threads running on): said, where loading it ran out of memory in libdw, which ended the
  // process through its error() (git's own: a crash), or in the loader, which allocates the
  // reporter's thread-local data: "cannot allocate memory for thread-local data: ABORT", status
  // 127, the program's buffered output lost (a review's, under ulimit -d 26000).
  if (const std::size_t left = os::address_space_left(); left < kReporterRoom)
    return stderr_line(
        "heapledger: no report: %zu MiB of address space left under the process's limit "
        "(ulimit -v), and the reporter needs about %zu\n",
        left >> 20, kReporterRoom >> 20);
  if (const std::size_t left = os::data_left(); left < kReporterDataRoom)
    return stderr_line(
        "heapledger: no report: %zu MiB of data left under the process's limit (ulimit -d), and "
        "the reporter needs about %zu\n",
        left >> 20, kReporterDataRoom >> 20);
  if (const ReporterApi* r = reporter()) return r->write_reports(&data, &req, outcome);
  stderr_line("heapledger: no report: the reporter module could not be loaded\n");
}

// Who begins the exit report: process id << 32 | thread id.
std::uint64_t this_reporter() {
  return std::uint64_t{static_cast<std::uint32_t>(getpid())} << 32 | static_cast<std::uint32_t>(gettid());
}

// Another thread ending the process while the report is written (an exit() racing the one that
// began it, or a thread that the leak scan's signal woke early from a sleep) would end it under
// the report: it waits for the report first. It gets here through our library destructor or
// quick_exit hook, or, when the reporting thread is already running the exit handlers (each is
// taken once), through the ones registered as the report begins; from _exit() and _Exit()
// through their interposed versions (shim/exit_api.cc). It waits while the report makes
// progress (a write waiting for a slow reader counts), for at most 2 minutes, and not at all if it
// holds one of our locks: a thread that exits holding something the report needs (one of those, or
// the loader's lock when exit() is called from a library's constructor) would otherwise stall it.
// Not nanosleep(): a cancellation point, where a thread that another one cancels (from an exit
// handler, say) would end instead of exiting as it called for.
// Through kernel_call: the leak scan stops a thread waiting here and counts its registers.
void sleep_a_tick(const timespec* tick) {
  os::kernel_call(SYS_nanosleep, reinterpret_cast<long>(tick));
}

// A thread that called _exit() and wrote the report first (before_immediate_exit) ends the
// process right after it: a thread that waited for that report must not run on meanwhile (the
// main thread, done with the destructors, flushed stdout the program's _exit would have
// dropped). It sleeps until the process ends.
void hold_if_ending() {
  const std::uint64_t ending = g_state.ending_now.load();
  if (ending == 0 || ending == this_reporter() || ending >> 32 != this_reporter() >> 32) return;
  for (;;) {
    timespec tick{1, 0};
    sleep_a_tick(&tick);
  }
}

// Whether the report's writer is waiting for room on its stream: a pipe whose reader pauses
// (`prog 2>&1 | less` before one scrolls). Its write makes no progress of its own meanwhile, and a
// thread that ended the process after 2 s of that cut the report at the pipe's 64 KiB. Not
// asked in a sandbox (poll is a system call a filter may not allow).
bool report_waits_for_reader() {
  const int fd = g_state.report_writing_to.load(std::memory_order_relaxed);
  if (fd < 0 || os::sandboxed()) return false;
  pollfd p{fd, POLLOUT, 0};
  return os::kernel_call(SYS_poll, reinterpret_cast<long>(&p), 1, 0) == 0;
}

void wait_for_report() {
  // Not begun (a child forked after it began has none in progress), begun by this thread, or by
  // another process (a child made without the fork handlers, by a raw clone).
  const std::uint64_t reporter = g_state.reporter.load();
  if (reporter == 0 || reporter == this_reporter() || reporter >> 32 != static_cast<std::uint32_t>(getpid()) ||
      lock_held_by_this_thread())
    return;
  constexpr int kIdleLimitMs = 2000, kTotalLimitMs = 120'000;
  std::uint64_t seen = g_state.report_progress.load(std::memory_order_relaxed);
  for (int idle = 0, total = 0; idle < kIdleLimitMs && total < kTotalLimitMs; ++idle, ++total) {
    if (g_state.reported.load(std::memory_order_acquire)) return hold_if_ending();
    if (const std::uint64_t now = g_state.report_progress.load(std::memory_order_relaxed); now != seen)
      seen = now, idle = 0;
    else if (idle % 64 == 63 && report_waits_for_reader())
      idle = 0;
    timespec tick{0, 1'000'000};
    sleep_a_tick(&tick);
  }
}

void write_exit_report();

// The exit report runs on a stack of its own, whatever the thread calling exit() has left: the
// scan and the reporter (libdw above all) need more than a thread made with a small stack has
// (16 KiB: a crash in the scan; 32 KiB: the reporter wrote past the guard page into our tables,
// and the exit hung), or a signal handler on its alternate stack.
constexpr std::size_t kReportStackBytes = std::size_t{4} << 20;

// fn(arg) on that stack; on this one if it cannot be mapped.
void on_report_stack(void (*fn)(void*), void* arg) {
  if (!os::run_on_own_stack(kReportStackBytes, fn, arg)) fn(arg);
}

// What the exit report needs from the thread's own stack, and what it decides.
struct ExitCaller {
  std::uintptr_t stack_top = 0;  // where the program's frames begin
  std::uintptr_t regs[6]{};      // what the exit() caller held in registers
  int n_regs = 0;
  // Where a walk out from the exit() caller starts, to find the frames that signals interrupted
  // (RuntimeApi::interrupted_frames); null: not looked for.
  const ucontext_t* context = nullptr;
  int exit_code = 0;  // leak_exitcode or error_exitcode, if the report calls for one
};
void scan_and_report(ExitCaller* caller);

// Code on the way from exit() (or quick_exit()) to the report: libc's exit path, the dynamic
// loader's destructor calls, and ours.
bool on_exit_path(std::uintptr_t ra) {
  if (ra - g_state.self_start < g_state.self_end - g_state.self_start) return true;
  const std::uint16_t index = g_state.modules.find(ra);
  if (index == ModuleMap::kUnknown) return false;
  const char* path = g_state.modules.get(index).path;
  return module_named(path, "libc.so") || module_named(path, "ld-linux");
}

// Where the current thread's stack starts to count as roots: the frame that called exit(). The
// frames below it are libc's and ours, written over what the program's returned frames left
// (a malloc's result, copied through our allocation path), which would otherwise keep a block
// the program can no longer reach "still reachable". What that frame still held in registers
// was saved in those frames: libunwind reads it back into regs (*n_regs of them). Without a
// walk (or without those registers), this frame, as before.
std::uintptr_t exit_caller_sp(std::uintptr_t fallback, std::uintptr_t* regs, int* n_regs) {
  *n_regs = 0;
  const std::uintptr_t sp = fast_unwind::sp_past(on_exit_path, g_state.unload_epoch.load());
  if (sp <= fallback || !g_state.runtime) return fallback;
  ModuleMap::LoaderCall loader(g_state.modules.loader_calls());  // libunwind (see loader_calls)
  *n_regs = loader ? g_state.runtime->saved_registers(sp, regs) : 0;
  return *n_regs > 0 ? sp : fallback;
}

// Exit handlers registered for no library: atexit() and at_quick_exit() register them for the
// caller's, and the loader's __cxa_finalize for ours (right after our destructor) runs or drops
// them then (quick_exit from a later destructor found none, and wrote no report: a review's).
int at_exit_for_good(void (*fn)()) {
  return __cxa_atexit([](void* f) { reinterpret_cast<void (*)()>(f)(); },
                      reinterpret_cast<void*>(fn), nullptr);
}

// While the report waits for the libraries' destructors, one of them that aborts or crashes
// would end the process without it (it was written before them until then). For the signals
// whose default action ends the process (faults, abort, and SIGTERM from a watchdog or Ctrl-C
// when sent), and only where that default is in force (a program's own handler is left alone),
// a handler writes the report first, then lets the signal end the process as it would have:
// leak_exitcode and error_exitcode do not replace it. The handlers stay while the report is
// written: other threads run on meanwhile (except during the scan), and one that crashes then
// waits for the report before it ends the process (a detached thread tripping over what the
// destructors took down lost the report, a user's trial).
// The timers' and the user's signals too: a program's alarm(1) going off during the report ended
// the process with it, the report cut short (1,273 of its 2,975 lines).
constexpr int kFatalSignals[] = {SIGABRT,   SIGSEGV, SIGBUS,  SIGILL,  SIGFPE,  SIGTERM,
                                 SIGINT,    SIGHUP,  SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2,
                                 SIGVTALRM, SIGPROF, SIGXCPU, SIGIO,   SIGPWR};
bool g_catching[std::size(kFatalSignals)] = {};
// The exit code the report called for, when it was written from _exit() (before_immediate_exit
// returns it there: no flush of stdio, no second _exit).
int g_immediate_status = 0;

// Whether this process left its report for later (a child forked meanwhile inherits the mark:
// it has a report of its own to write when it exits, and none to write for its parent).
bool report_left_here() {
  const std::uint64_t left = g_state.finish_left_by.load();
  return left != 0 && left >> 32 == this_reporter() >> 32;
}

// A signal sent to this very thread while it writes the report, held until the report is written
// (finish() raises it then).
std::atomic<int> g_held_signal{0};

// The process whose report is written from _exit() (its id; 0: none). Its status is the one the
// program gave _exit, and a signal sent to it meanwhile changes nothing: without heapledger the
// process would have been gone before it came (see before_immediate_exit).
std::atomic<std::uint32_t> g_ending_with_status{0};

void catch_fatal_signals();
void watch_the_report(int sig);
bool is_watch_tick(const siginfo_t* info);
bool report_stalled();
void end_the_watch();

// A fault returns to the instruction, which faults again; abort() raises again; a signal that was
// sent (raise, kill, pthread_kill, another process, the terminal's Ctrl-C) is raised again here,
// or the process went on. One sent while this process's report is written (the kernel hands a
// signal sent to the process to any thread: `timeout` or Ctrl-C during the report ended the
// process at once, the report lost and its temporary file left behind; a trial's) is held until
// the report is written, and ends the process then (finish()); the handler stays meanwhile, for
// any that come after it. Held on any thread (but abort()'s: see below): one that landed on another
// thread than the writer's gave the default action back, and the next ended the process
// mid-report (a review's).
//
// begin: the signal is a stop signal that found the program running (report_at_stop): the report
// is begun here if nobody has begun it.
// Whether a fault's instruction faults again once the handler returns: not that of a SIGSEGV the
// kernel sent itself (SI_KERNEL) as it could not write a handler's frame to its alternate stack,
// which is no instruction's (the program went on, exit status 0: a review's), but that of a
// general protection fault (a pointer that is not canonical, an instruction the program may not
// run), which the kernel sends so too: raised again here instead, its core dump had heapledger's
// raise innermost, not the program's instruction (a review's).
bool faults_again(const siginfo_t* info, const void* context) {
  if (info->si_code != SI_KERNEL) return true;
#if defined(__x86_64__)
  constexpr greg_t kGeneralProtection = 13;  // the trap number
  return context && static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_TRAPNO] ==
                        kGeneralProtection;
#else
  return true;
#endif
}

void end_with(int sig, const siginfo_t* info, const void* context, bool begin) {
  const bool fault =
      info->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
  if (!fault && sig != SIGABRT &&
      g_ending_with_status.load() == static_cast<std::uint32_t>(syscall(SYS_getpid)))
    return;  // sent after _exit(): dropped, as it would have found the process gone
  const std::uint64_t reporter = g_state.reporter.load();
  const bool being_written =
      reporter != 0 && reporter >> 32 == this_reporter() >> 32 && !g_state.reported.load();
  // Not abort() on another thread: it goes on to end the process when its handler returns, so it
  // waits for the report below (a thread that aborts while the report is written).
  const bool writing_here = being_written && reporter == this_reporter();
  if (!fault && being_written && (writing_here || sig != SIGABRT)) {
    if (is_watch_tick(info)) {  // watch_the_report's: not a signal of the program's to hold
      if (writing_here && report_stalled()) {
        stop_signals::give_back(sig);
        raise(sig);
      }
      return;
    }
    g_held_signal.store(sig);
    g_dying.store(sig);  // the signal ends the process, not leak_exitcode (write_exit_report)
    return;
  }
  if (!fault && reporter == 0 && report_left_here()) {
    g_held_signal.store(sig);
    g_dying.store(sig);
    finish();  // raises it, unless another thread began the report first (it raises it then)
    if (g_held_signal.exchange(0) == 0) return;
  }
  if (begin) {
    // A report begun here keeps the signals caught while it is written: `timeout` sends its
    // signal twice (to the process, then to its group), and the second ended the process
    // mid-report. finish() gives the default action back once it is written. A thread that
    // waits for the report (one returning from main, or calling exit()) is held once it is
    // written, until the signal ends the process: it would have run the program's exit handlers.
    catch_fatal_signals();
    watch_the_report(sig);
    g_state.ending_now.store(this_reporter());
  } else {
    for (std::size_t i = 0; i < std::size(kFatalSignals); ++i)
      if (kFatalSignals[i] == sig) g_catching[i] = false;
    stop_signals::give_back(sig);
  }
  if (report_left_here() || being_written || begin) {
    g_dying.store(sig);
    finish();  // writes it, or waits while another thread does
  }
  // The default action, whatever the program put in place meanwhile: a handler of its own,
  // installed while the report was written, ran for the signal and the process went on (exit
  // status 0, where plain it was gone; a review's).
  stop_signals::give_back(sig);
  if (fault && faults_again(info, context)) return;  // it faults with the default action
  raise(sig);  // SA_NODEFER: delivered now
}

void report_before_dying(int sig, siginfo_t* info, void* context) {
  // A namespace's pid 1 catches only the faults here; one sent with kill() the kernel would have
  // dropped: held, it said "ended by SIGSEGV" and lost leak_exitcode (a review's).
  if (info->si_code <= 0 && syscall(SYS_getpid) == 1) return;
  end_with(sig, info, context, false);
}

void catch_fatal_signals() {
  // The init of a PID namespace: a signal sent to it at the default action is dropped by the
  // kernel, not the end of it; caught, it was held, said "ended by SIGTERM" in the report, and
  // the exit status lost leak_exitcode (a review's). Only the faults the kernel raises end it.
  const bool init = syscall(SYS_getpid) == 1;
  for (std::size_t i = 0; i < std::size(kFatalSignals); ++i) {
    if (init && !stop_signals::is_fault(kFatalSignals[i])) continue;
    struct sigaction now;
    if (sigaction(kFatalSignals[i], nullptr, &now) != 0 || now.sa_handler != SIG_DFL)
      continue;  // (SA_SIGINFO with no handler is the default too: they are one word)
    struct sigaction catcher {};
    catcher.sa_sigaction = report_before_dying;
    sigemptyset(&catcher.sa_mask);
    catcher.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    g_catching[i] = sigaction(kFatalSignals[i], &catcher, nullptr) == 0;
  }
}

void stop_catching_fatal_signals() {
  for (std::size_t i = 0; i < std::size(kFatalSignals); ++i) {
    if (!g_catching[i]) continue;
    g_catching[i] = false;
    struct sigaction now;
    if (sigaction(kFatalSignals[i], nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
        now.sa_sigaction == report_before_dying)
      stop_signals::give_back(kFatalSignals[i]);  // the default itself: the report is written
  }
}

// The stop signals' timer (come_again); -1: none.
std::atomic<int> g_again_timer{-1};
std::atomic<int> g_agains{0};

// A timer of our own (the program's timers and itimers are left alone) that sends sig in `ms`, and
// every `interval_ms` after (0: once): to the thread tid, or to the process (0). Its id, or -1 if
// there is none to be had (a seccomp filter, a limit).
int send_later(int sig, pid_t tid, long ms, long interval_ms) {
  sigevent ev{};
  ev.sigev_notify = tid ? SIGEV_THREAD_ID : SIGEV_SIGNAL;
  ev.sigev_signo = sig;
  ev._sigev_un._tid = tid;
  int id = -1;
  if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) != 0) return -1;
  itimerspec when{};
  when.it_value = {ms / 1000, ms % 1000 * 1'000'000};
  when.it_interval = {interval_ms / 1000, interval_ms % 1000 * 1'000'000};
  if (syscall(SYS_timer_settime, id, 0, &when, nullptr) != 0) {
    syscall(SYS_timer_delete, id);
    return -1;
  }
  return id;
}

// The signal once more, in a millisecond, to the process: to whichever thread takes it then (this
// one may have ended by then, or blocked it: sent to it, the signal was lost with it, and the
// process ran on, a review's). False if there is no timer to be had, or after 2 s of tries.
bool come_again(int sig) {
  constexpr int kMaxTries = 2000;
  if (g_agains.fetch_add(1) >= kMaxTries) return false;
  const int id = send_later(sig, 0, 1, 0);
  if (id < 0) return false;
  // One that was there fires once more, and runs the catcher once more: nothing is deleted on
  // its say-so (in a forked child, a number the parent had may be one of the program's).
  g_again_timer.store(id);
  return true;
}

// The report a stop signal began runs in a signal handler, on a thread that may hold a lock of the
// C library's that the report needs too (loading the reporter module runs constructors that call
// atexit(): a program interrupted inside atexit() waited for itself for ever, a review's). The
// thread is sent sig every 10 s meanwhile; held back (end_with) while the report moves, it ends
// the process once the report has not moved for 10 s, as the signal would have without
// heapledger. Not every second: a handler of the program's own, installed for that signal while
// the report was written (its other threads run on), got every tick.
std::atomic<int> g_watch_timer{-1};
constexpr long kWatchMs = 10'000;

// Stalled: neither the report's progress count nor the thread's CPU time moved since the last tick
// (a lock it waits for takes none; a scan of 2 GB of heap took 31 s without a progress step, a
// review's), and it is not waiting for room on its stream.
struct Stall {
  std::uint64_t progress = 0;
  std::uint64_t cpu_ns = 0;
};
Stall g_stall;

Stall now_stall() {
  timespec cpu{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  return Stall{g_state.report_progress.load(std::memory_order_relaxed),
               static_cast<std::uint64_t>(cpu.tv_sec) * 1'000'000'000u +
                   static_cast<std::uint64_t>(cpu.tv_nsec)};
}

void watch_the_report(int sig) {
  g_stall = now_stall();
  g_watch_timer.store(send_later(sig, static_cast<pid_t>(syscall(SYS_gettid)), kWatchMs, kWatchMs));
}

bool is_watch_tick(const siginfo_t* info) {
  return info->si_code == SI_TIMER && info->si_timerid == g_watch_timer.load();
}

// At each of the watch's ticks, on the thread writing the report.
bool report_stalled() {
  constexpr std::uint64_t kBusyNs = 10'000'000;  // CPU time in a tick that counts as work
  const Stall now = now_stall();
  const bool moved = now.progress != g_stall.progress || now.cpu_ns - g_stall.cpu_ns >= kBusyNs;
  g_stall = now;
  return !moved && !report_waits_for_reader();
}

// The watch is over: the report is written.
void end_the_watch() {
  if (const int id = g_watch_timer.exchange(-1); id >= 0) syscall(SYS_timer_delete, id);
}

// Whether the report can be written on this thread now. Not inside the allocator or the tracker
// (the thread holds what the report needs, and would wait for itself), nor inside the dynamic
// loader (the report loads its module, and takes the loader's lock, which the interrupted code
// holds with its lists half changed).
bool can_report_here(const void* context) {
  if (in_tracker() || lock_held_by_this_thread()) return false;
#if defined(__x86_64__)
  const auto pc = static_cast<std::uintptr_t>(
      static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
  const std::uint16_t index = g_state.modules.find(pc);
  if (index != ModuleMap::kUnknown && module_named(g_state.modules.get(index).path, "ld-linux"))
    return false;
#else
  (void)context;
#endif
  return true;
}

// The catcher of the stop signals (shim/stop_signals.h): the program left the default action,
// which ends the process, so the report is written first, as memcheck does (LeakSanitizer writes
// none), and then the signal ends the process as it would have, leak_exitcode or not. A server
// stopped with Ctrl-C or kill had no report at all, nor a program that crashed or called abort().
// Where the report cannot be begun on this thread now (can_report_here), a signal that was sent
// comes again a millisecond later; with no timer for that, and for a fault or the thread's own
// abort() (the one would fault again at once, the other goes on to end the process), it ends
// the process at once, without the report, as it did before.
void report_at_stop(int sig, siginfo_t* info, void* context) {
  // A child forked as the init of a new PID namespace, before stop_signals::after_fork: as the
  // kernel would, nothing for a signal that was sent.
  if (!(info->si_code > 0 && stop_signals::is_fault(sig)) && syscall(SYS_getpid) == 1) return;
  if (info->si_code == SI_TIMER) {  // come_again's
    const int id = info->si_timerid;
    int expected = id;
    if (g_again_timer.compare_exchange_strong(expected, -1)) syscall(SYS_timer_delete, id);
  }
  // Begun already (by exit() on another thread, or written: the process is on its way out). Or
  // not this process's to write: a vforked child's memory is its parent's.
  const bool begun = g_state.reporter.load() != 0 || !g_state.recording.load() ||
                     static_cast<std::uint32_t>(syscall(SYS_getpid)) != g_state.pid;
  const bool here = !begun && can_report_here(context);
  const bool own = info->si_code > 0 ||  // a fault
                   (sig == SIGABRT && info->si_code == SI_TKILL &&
                    static_cast<std::uint32_t>(info->si_pid) == g_state.pid);
  if (!begun && !here && !own && come_again(sig)) return;
  end_with(sig, info, context, here);
}

}  // namespace

// A thread that ends the process with _exit() while the report waits for the libraries'
// destructors (one of those destructors, or a watchdog thread meanwhile) would lose it: it is
// written now. Not by a child forked meanwhile, which inherited the wait (a child forked as the
// process exits, then calling _exit at once, wrote a whole report of its own, and a test's
// forking loop timed out).
//
// A program that ends itself with _exit() (dash ends every `sh -c` so; programs that skip their
// cleanup) has its report written too, as memcheck does (LeakSanitizer writes none): only the
// process that was started, not a forked child (which skips its parent's exit handlers and
// buffers on purpose: a report of the parent's heap per child) nor a vforked one (the memory is
// its parent's). stdio is not flushed: _exit drops what is buffered, and still does.
//
// Also while exit() is on its way (another thread's, or this thread's own: an exit handler or a
// destructor that calls _exit()): the report that exit() would write at its end is written now.
int before_immediate_exit(int status) {
  const bool started_here = static_cast<std::uint32_t>(getpid()) == g_state.start_pid;
  if (report_left_here() ||
      (started_here && g_state.recording.load() && g_state.reporter.load() == 0)) {
    g_state.ending_now.store(this_reporter());
    // A signal whose default action ends the process, sent while the report is written, would
    // end it mid-report with that signal's status: pigz's SIGINT handler (System V semantics,
    // reset to the default as it runs) calls _exit(4), and `timeout -s INT` sends a second
    // SIGINT, to the process group (a user trial: status 130, no report, 2 runs in 5). Caught
    // and dropped instead (report_before_dying), as plain the process is gone before it comes.
    g_ending_with_status.store(static_cast<std::uint32_t>(getpid()));
    catch_fatal_signals();
    finish();  // or waits, if another thread has just begun it
    if (g_immediate_status != 0) status = g_immediate_status;
  }
  wait_for_report();
  return status;
}

// exit() is not thread-safe in glibc: two threads in it at once each run what is left of the exit
// handlers, and the one that finds none left ends the process at once. The report is written from
// one of those handlers (our destructor, at the very end): with three threads calling exit()
// together it was lost in every run (tests/programs/exit_together), with nothing on stderr. So
// the first thread in exit() goes on, and one that comes while it is still on its way out waits
// for its report, as Rust's std::process::exit makes a second caller wait for the first. Not for
// ever: while nobody has begun the report, for at most 2 s (the first exit may be stuck on
// something this thread holds, as in a destructor joining it); once begun, while it makes
// progress (wait_for_report). Main returning from main reaches exit() inside libc, not here: a
// thread calling exit() just then still races it (README, Known limits).
void before_exit() {
  if (!g_state.recording.load(std::memory_order_relaxed)) return;
  const std::uint64_t me = this_reporter();
  std::uint64_t first = g_state.exiting.load();
  // Unclaimed, or claimed in the parent before a fork (or by a vfork child): this thread is first.
  while (first == 0 || first >> 32 != me >> 32)
    if (g_state.exiting.compare_exchange_weak(first, me)) first = me;
  if (first == me) return wait_for_report();  // one begun from main's return, if any
  if (lock_held_by_this_thread()) return;
  constexpr int kNotBegunLimitMs = 2000;
  for (int waited = 0; waited < kNotBegunLimitMs; ++waited) {
    if (g_state.reported.load(std::memory_order_acquire)) return;
    if (g_state.reporter.load() != 0) return wait_for_report();
    timespec tick{0, 1'000'000};
    sleep_a_tick(&tick);
  }
}

void take_stop_signals() { stop_signals::take(report_at_stop); }

void forget_parents_ending() {
  g_held_signal.store(0);
  g_dying.store(0);
  g_watch_timer.store(-1);  // timers are not inherited; their numbers may be the child's own
  g_again_timer.store(-1);
  g_agains.store(0);
  g_stall = Stall{};
}

void finish() {
  if (!g_state.recording.load()) return g_state.finish_left_by.store(0);
  settle_own_frees();
  std::uint64_t none = 0;
  const bool mine = g_state.reporter.compare_exchange_strong(none, this_reporter());
  // Only once the report is claimed: a signal in between finds one mark or the other
  // (report_before_dying), never neither (it ended the process without the report; a review's).
  g_state.finish_left_by.store(0);
  if (!mine) return wait_for_report();
  at_exit_for_good(wait_for_report);
  __cxa_at_quick_exit(wait_for_report, nullptr);
  write_exit_report();
  g_state.reported.store(true, std::memory_order_release);
  stop_catching_fatal_signals();  // from here on, a crash ends the process as it would have
  end_the_watch();
  if (const int sig = g_held_signal.exchange(0)) raise(sig);
}

void keep_report_room() {
  rlimit space{}, data{};
  if (!report_wanted()) return;
  if (getrlimit(RLIMIT_AS, &space) == 0 && space.rlim_max != RLIM_INFINITY)
    g_space_reserve.store(os::reserve_internal(kSpaceReserve));
  if (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_max != RLIM_INFINITY)
    g_data_reserve.store(os::map_internal_sparse(kDataReserve));
}

// Our destructor runs in _dl_fini before those of the program's libraries (the loader finalizes
// objects that depend on nothing in the order they were loaded, and ours was preloaded): a block a
// library's destructor let go of was reported "still reachable", and its double free never seen
// (a user's trial). Exit handlers registered while glibc runs them are run after the one running
// (_dl_fini, the first registered and so the last to run): the report is one of them. Where one
// cannot be registered, now.
void finish_after_destructors() {
  if (!g_state.recording.load()) return;
  g_state.stdio_flushed_after.store(true);
  g_state.finish_left_by.store(this_reporter());
  if (at_exit_for_good([] { finish(); }) != 0) return finish();
  catch_fatal_signals();
}

namespace {

void write_exit_report() {
  if (!report_wanted()) {  // on the report's stack too: its line loads the reporter
    if (g_state.unwinding.mode == Unwinding::kVerify)
      on_report_stack([](void*) { report_unwind_verification(); }, nullptr);
    return;
  }
  // From here on this thread's allocations are served but never recorded.
  tl_busy_forever();
  if (lock_held_by_this_thread()) {
    stderr_line(
        "heapledger: the process exited from inside an allocation (exit() or _exit() in a signal "
        "handler?); no exit report\n");
    return;
  }
  ReportRoom room;
  // The program's frames (and the registers it saved in them) are above the one that called exit.
  ExitCaller caller;
  caller.stack_top = exit_caller_sp(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)),
                                    caller.regs, &caller.n_regs);
  // exit() from a handler on an alternate signal stack: the frames it interrupted are live, on
  // the thread's own stack (or anywhere, for an alternate stack in a frame of its own). The walk
  // that finds them runs on the report's stack (libunwind needs more than a signal stack may
  // have), from here. One report per process: the context need not be on this stack either.
  static ucontext_t context;
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (g_state.runtime && fast_unwind::on_signal_stack(here) && getcontext(&context) == 0)
    caller.context = &context;
  on_report_stack([](void* p) { scan_and_report(static_cast<ExitCaller*>(p)); }, &caller);
  if (caller.exit_code != 0 && g_state.ending_now.load() == this_reporter()) {
    g_immediate_status = caller.exit_code;  // on its way out through _exit()
  } else if (caller.exit_code != 0 && g_dying.load() == 0) {
    std::fflush(nullptr);
    // A signal held since g_dying was read ends the process instead of the exit code; one that
    // comes once the handlers are gone does so by itself.
    stop_catching_fatal_signals();
    if (const int sig = g_held_signal.exchange(0)) raise(sig);
    _exit(caller.exit_code);
  }
}

void scan_and_report(ExitCaller* caller) {
  ExitData data = base_data();
  LeakScan scan;
  Scratch<RootPolicy::Range> dead(DeadStacks::kMax);
  // The modules' extents: without room for them, no stack counts as static data.
  Scratch<RootPolicy::Range> modules(ModuleMap::kMaxModules);
  const std::size_t max_modules = modules ? ModuleMap::kMaxModules : 0;
  OwnRoots own(caller->stack_top);
  own.add_registers(caller->regs, caller->n_regs);
  if (caller->context) {
    InterruptedFrame frames[OwnRoots::kMaxStacks - 1];
    ModuleMap::LoaderCall loader(g_state.modules.loader_calls());  // libunwind (see loader_calls)
    const int n = loader ? g_state.runtime->interrupted_frames(caller->context, frames,
                                                               static_cast<int>(std::size(frames)))
                         : 0;
    for (int i = 0; i < n; ++i) own.add_interrupted(frames[i]);
  }
  RootPolicy policy = root_policy(dead.get(), DeadStacks::kMax, modules.get(), max_modules);
  policy.while_stopped = [](void* arg) {  // the counts as of the live blocks the scan reads
    auto* d = static_cast<ExitData*>(arg);
    const CountTotals c = count_totals(true);
    d->allocations = c.allocations;
    d->frees = c.frees;
    d->bytes_allocated = c.bytes_allocated;
  };
  policy.while_stopped_arg = &data;
  bool scanned = dead && scan.run(g_state.ledger, policy, own);
  g_state.report_progress.fetch_add(1, std::memory_order_relaxed);
  // Its line loads the reporter: only after the scan. Loaded now, after the libraries'
  // destructors, the reporter's dependencies the program had loaded too run their constructors
  // again (the loader cleared their marks as it ran their destructors): libstdc++'s made a new
  // exception arena, and the one the program's made at start turned into a definite leak.
  report_unwind_verification();
  Scratch<ExitSite> sites(scanned ? scan.size() : 0);
  // Pages touched as they fill. Without room for them the report has no leak's threads, but
  // the scan's results all the same (it threw them away, and every live block counted as lost:
  // a review's).
  Scratch<ExitThreadShare> shares(scanned ? scan.size() : 0);
  if (scanned && sites) {
    data.sites = sites.get();
    data.n_sites =
        group_sites(scan.mutable_blocks(), scan.size(), sites.get(), shares.get(), &data.n_shares);
    data.shares = shares.get();
    data.thread = thread_named;
    data.scanned = true;
    data.scan_ms = scan.stats().milliseconds;
    data.scan_threads = scan.stats().threads;
    data.scan_threads_stopped = scan.stats().threads_stopped;
    data.scan_threads_held = scan.stats().threads_held;
    data.scan_root_bytes = scan.stats().root_bytes;
    data.scan_heap_bytes = scan.stats().heap_bytes_scanned;
    data.maps = scan.maps();
    data.maps_len = scan.maps_size();
  } else {
    data.scan_failed = true;
    data.scan_maps_error = scan.stats().maps_error;
    std::int64_t bytes, blocks;
    g_state.counters.live.settle(&bytes, &blocks);
    data.live_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, bytes));
    data.live_blocks = static_cast<std::uint64_t>(std::max<std::int64_t>(0, blocks));
  }
  auto max_peak = static_cast<std::size_t>(g_state.options.peak_sites);
  Scratch<ExitPeakSite> peak(max_peak);
  data.peak = peak.get();
  data.n_peak = peak_sites(&data, peak.get(), peak ? max_peak : 0);
  Scratch<ExitError> errors(Errors::kMax);
  if (errors) data.errors = errors.get(), data.n_errors = copy_errors(errors.get());
  data.errors_total = g_state.errors.total.load();
  Scratch<ExitPoint> timeline(Timeline::kCapacity + 1);  // and a skipped change
  if (timeline) {
    data.timeline = timeline.get();
    data.n_timeline = copy_timeline(timeline.get(), &data.duration_ms);
  }

  ReportOutcome outcome;
  deliver_report(data, request(), &outcome);
  // Exit codes for CI, decided after suppressions.
  if (!exit_status_is_ours()) return;
  if (g_state.options.error_exitcode != 0 && outcome.errors > 0)
    caller->exit_code = g_state.options.error_exitcode;
  else if (g_state.options.leak_exitcode != 0 && outcome.leaked_blocks > 0)
    caller->exit_code = g_state.options.leak_exitcode;
}

}  // namespace

void abort_on_error(const Errors::Entry& e) {
  tl_busy_forever();
  // With log=none the error would be written nowhere: the program ended with SIGABRT and not a
  // word why (a user trial). One line says what, the rest is for a log.
  if (!std::strcmp(g_state.options.log, "none")) {
    // A mismatched free names both ends, as the report would (it said "released through the
    // wrong family": a user trial).
    static constexpr const char* kWhat[] = {"double free", "invalid free", "mismatched free"};
    char both_ends[96];
    const char* detail = e.detail ? e.detail : "";
    if (e.kind == Errors::kMismatchedFree)
      detail = mismatch_detail(e.detail, e.allocated, e.released, both_ends, sizeof both_ends,
                               e.block_size, e.released_size);
    stderr_line(
        "heapledger: %s of %#lx (%s); aborting (on_error=abort; log=none leaves out the stacks)\n",
        kWhat[e.kind < 3 ? e.kind : 1], static_cast<unsigned long>(e.address), detail);
  }
  // The JSON report is not written either (no scan was made): said, or a CI job found no file
  // and no word why (a CI user's trial).
  if (g_state.options.json[0] && std::strcmp(g_state.options.json, "none") != 0)
    stderr_line(
        "heapledger: no JSON report (json=%.200s): on_error=abort stops at the first heap error\n",
        g_state.options.json);
  ExitData data = base_data();
  ExitError error = exit_error(e);
  data.errors = &error;
  data.n_errors = 1;
  data.errors_total = 1;
  ReportRequest req = request();
  req.json_path = "";  // the exit report is not written: this is a partial one, for the log
  req.errors_only = true;
  {
    ReportRoom room;  // put back before the abort
    struct Job {
      ExitData* data;
      ReportRequest* req;
    } job{&data, &req};
    on_report_stack(
        [](void* p) {
          auto* j = static_cast<Job*>(p);
          ReportOutcome outcome;
          deliver_report(*j->data, *j->req, &outcome);
        },
        &job);
  }
  // The report of the error, then the SIGABRT: why the program ended there, said last (it was
  // not, a user trial's; with log=none it is said above).
  // A log path with %p in it is named as given, with the process id it stands for (the raw path
  // alone named no file: a review's).
  if (const char* log = g_state.options.log; std::strcmp(log, "none") != 0) {
    char where[256] = "reported above";  // log=stderr
    if (std::strchr(log, '%'))
      std::snprintf(where, sizeof where, "its report: log=%.200s, pid %u", log, g_state.pid);
    else if (std::strcmp(log, "stderr") != 0)
      std::snprintf(where, sizeof where, "its report: log=%.200s", log);
    stderr_line("heapledger: aborting: on_error=abort stops at the first heap error (%s)\n", where);
  }
  stop_signals::release(SIGABRT);  // its one line is the report
  std::abort();
}

}  // namespace heapledger::detail::tracker
