// The exit report, first half: gathers the ledger, counters, peak snapshot and timeline into the
// report model, with raw frames (address, module, offset). The runtime symbolizes and writes it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <cstdio>
#include <string>
#include <vector>

#include "tracker/leak_scan.h"
#include "tracker/report_model.h"
#include "tracker/state.h"
#include "tracker/tracker.h"

namespace heapledger::detail::tracker {
namespace {

double to_ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

std::string read_file(const char* path) {
  std::string out;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

ProcessInfo process_info() {
  ProcessInfo p;
  p.pid = getpid();
  p.ppid = getppid();
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) p.exe.assign(exe, static_cast<std::size_t>(n));
  std::string cmdline = read_file("/proc/self/cmdline");
  for (std::size_t pos = 0; pos < cmdline.size();) {
    std::size_t end = cmdline.find('\0', pos);
    if (end == std::string::npos) end = cmdline.size();
    p.argv.push_back(cmdline.substr(pos, end - pos));
    pos = end + 1;
  }
  p.duration_ms = to_ms(now_us());
  return p;
}

Stack raw_stack(std::uint32_t id) {
  Stack stack;
  const StackRecord* r = g_state.stacks.get(id);
  if (!r) return stack;
  stack.reserve(r->depth);
  for (std::uint32_t i = 0; i < r->depth; ++i) {
    Frame f;
    f.address = r->frames()[i];
    if (r->modules()[i] != ModuleMap::kUnknown) {
      Module m = g_state.modules.get(r->modules()[i]);
      f.module = m.path ? m.path : "";
      f.offset = f.address - m.bias;
    }
    stack.push_back(std::move(f));
  }
  return stack;
}

struct SiteTotals {
  std::uint64_t bytes = 0;
  std::uint64_t blocks = 0;
  std::uint64_t first_us = ~std::uint64_t{0};
  std::uint64_t last_us = 0;
  void add(std::uint64_t size, std::uint64_t t_us) {
    bytes += size;
    blocks += 1;
    first_us = std::min(first_us, t_us);
    last_us = std::max(last_us, t_us);
  }
};

const char* reach_name(Reach r) {
  switch (r) {
    case Reach::kDefinite: return "definite";
    case Reach::kIndirect: return "indirect";
    case Reach::kPossible: return "possible";
    case Reach::kReachable: return "reachable";
    default: return "unknown";
  }
}

// The dynamic linker's allocations (TLS vectors, link maps) are roots: they are found by the
// module of their allocating frame.
RootPolicy root_policy() {
  RootPolicy policy;
  policy.self_lo = g_state.self_start;
  policy.self_hi = g_state.self_end;
  policy.stacks = &g_state.stacks;
  for (std::size_t m = 0; m < g_state.modules.size() && policy.n_root_modules < 8; ++m) {
    Module mod = g_state.modules.get(static_cast<std::uint16_t>(m));
    const char* base = mod.path ? std::strrchr(mod.path, '/') : nullptr;
    if (base && std::strncmp(base + 1, "ld-linux", 8) == 0)
      policy.root_modules[policy.n_root_modules++] = static_cast<std::uint16_t>(m);
  }
  return policy;
}

// Live blocks, classified by reachability, grouped by (allocation stack, class).
void collect_leaks(Report& r, std::uintptr_t stack_top) {
  LeakScan scan;
  if (!scan.run(g_state.ledger, root_policy(), stack_top)) return;
  std::map<std::pair<std::uint32_t, Reach>, SiteTotals> sites;
  Summary& s = r.summary;
  for (std::size_t i = 0; i < scan.size(); ++i) {
    const ScannedBlock& b = scan.block(i);
    if (b.kind == AllocKind::kInternal) continue;
    sites[{b.stack, b.reach}].add(b.size, b.time_us);
    s.live_bytes += b.size;
    s.live_blocks += 1;
    if (b.reach == Reach::kDefinite || b.reach == Reach::kIndirect) {
      s.leaked_bytes += b.size;
      s.leaked_blocks += 1;
    } else if (b.reach == Reach::kPossible) {
      s.possible_bytes += b.size;
    } else {
      s.reachable_bytes += b.size;
    }
  }
  for (const auto& [key, t] : sites)
    r.leaks.push_back(Leak{reach_name(key.second), t.bytes, t.blocks, to_ms(t.first_us),
                           to_ms(t.last_us), raw_stack(key.first)});
  std::stable_sort(r.leaks.begin(), r.leaks.end(),
                   [](const Leak& a, const Leak& b) { return a.bytes > b.bytes; });
  r.scan = ScanInfo{scan.stats().milliseconds, scan.stats().threads, scan.stats().threads_stopped,
                    scan.stats().root_bytes, scan.stats().heap_bytes_scanned};
}

void collect_peak(Report& r) {
  Peak& pk = g_state.peak;
  r.summary.peak_bytes = static_cast<std::uint64_t>(pk.bytes.load());
  r.summary.peak_blocks = static_cast<std::uint64_t>(pk.blocks.load());
  r.summary.peak_time_ms = to_ms(pk.time_us.load());
  SpinGuard guard(pk.lock);
  std::vector<std::uint32_t> ids;
  for (std::uint32_t id = 0; pk.sites && id < pk.snapshot_stacks; ++id)
    if (pk.sites[id].bytes > 0) ids.push_back(id);
  std::sort(ids.begin(), ids.end(),
            [&](std::uint32_t a, std::uint32_t b) { return pk.sites[a].bytes > pk.sites[b].bytes; });
  if (ids.size() > static_cast<std::size_t>(g_state.options.peak_sites))
    ids.resize(static_cast<std::size_t>(g_state.options.peak_sites));
  for (std::uint32_t id : ids)
    r.peak.push_back(PeakSite{static_cast<std::uint64_t>(pk.sites[id].bytes),
                              static_cast<std::uint64_t>(pk.sites[id].blocks), raw_stack(id)});
}

void collect_timeline(Report& r) {
  Timeline& tl = g_state.timeline;
  SpinGuard guard(tl.lock);
  r.timeline.reserve(tl.count + 1);
  for (std::uint32_t i = 0; i < tl.count; ++i)
    r.timeline.push_back(TimelinePoint{to_ms(tl.points[i].t_us),
                                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, tl.points[i].bytes))});
}

const char* error_kind_name(Errors::Kind k) {
  switch (k) {
    case Errors::kDoubleFree: return "double_free";
    case Errors::kInvalidFree: return "invalid_free";
    default: return "mismatched_free";
  }
}

HeapError heap_error(const Errors::Entry& e) {
  HeapError h;
  h.kind = error_kind_name(e.kind);
  h.address = e.address;
  h.detail = e.detail ? e.detail : "";
  h.stack = raw_stack(e.stack);
  if (e.has_alloc) h.alloc_stack = raw_stack(e.alloc_stack);
  if (e.has_free) h.free_stack = raw_stack(e.free_stack);
  return h;
}

void collect_errors(Report& r) {
  Errors& e = g_state.errors;
  r.summary.errors = e.total.load();
  SpinGuard guard(e.lock);
  for (std::uint32_t i = 0; i < e.kept; ++i) r.errors.push_back(heap_error(e.entries[i]));
}

ReportRequest request() {
  return ReportRequest{g_state.options.log, g_state.options.json, g_state.options.show_reachable,
                       g_state.options.max_leaks, g_state.options.suppressions};
}

Report build_report(std::uintptr_t stack_top) {
  Report r;
  r.tool_version = HEAPLEDGER_VERSION;
  r.process = process_info();
  CountTotals c = count_totals();
  r.summary.allocations = c.allocations;
  r.summary.frees = c.frees;
  r.summary.bytes_allocated = c.bytes_allocated;
  collect_leaks(r, stack_top);
  collect_peak(r);
  collect_errors(r);
  collect_timeline(r);
  r.timeline.push_back(TimelinePoint{r.process.duration_ms, r.summary.live_bytes});
  return r;
}

}  // namespace

// Nothing asked of the exit report: no text, no JSON, no exit status depending on it.
bool report_wanted() {
  const Options& o = g_state.options;
  return std::strcmp(o.log, "none") != 0 || o.json[0] || o.leak_exitcode || o.error_exitcode;
}

void finish() {
  if (!g_state.recording.load() || g_state.finished.exchange(true)) return;
  if (!report_wanted()) return;
  // From here on this thread's allocations are served but never recorded.
  tl_busy_forever();
  // The program's frames (and the registers it saved in them) are above this one.
  auto stack_top = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  Report report = build_report(stack_top);
  ReportRequest req = request();
  const ReporterApi* r = reporter();
  if (!r) {
    std::fprintf(stderr, "heapledger: no report: the reporter could not be loaded\n");
    return;
  }
  r->write_reports(&report, &req);
  // Exit codes for CI, decided after suppressions (write_reports applies them to the summary).
  int code = 0;
  if (g_state.options.error_exitcode != 0 && report.summary.errors > 0) code = g_state.options.error_exitcode;
  else if (g_state.options.leak_exitcode != 0 && report.summary.leaked_blocks > 0) code = g_state.options.leak_exitcode;
  if (code != 0) {
    std::fflush(nullptr);
    _exit(code);
  }
}

void abort_on_error(const Errors::Entry& e) {
  tl_busy_forever();
  Report report;
  report.tool_version = HEAPLEDGER_VERSION;
  report.process = process_info();
  report.summary.errors = 1;
  report.errors.push_back(heap_error(e));
  ReportRequest req = request();
  req.json_path = "";  // the exit report is not written: this is a partial one, for the log
  req.errors_only = true;
  if (const ReporterApi* r = reporter()) r->write_reports(&report, &req);
  std::abort();
}

}  // namespace heapledger::detail::tracker
