// libheapledger_reporter.so: builds the report from what libheapledger.so gathered, symbolizes
// (libdw), applies suppressions, formats (fmt, nlohmann-json) and hands the text to
// report_delivery. Loaded with RTLD_LOCAL by libheapledger.so when it first has something to
// say; everything here runs with the caller's re-entry guard set.
#include <fcntl.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tracker/alloc_kind.h"
#include "tracker/report_delivery.h"
#include "tracker/report_json.h"
#include "tracker/report_model.h"
#include "tracker/report_text.h"
#include "tracker/runtime_api.h"
#include "tracker/suppressions.h"
#include "tracker/symbolizer.h"
#include "tracker/write_signals.h"

namespace heapledger::detail {
namespace {

// ---- naming what the report shows ----

// The most frames a stack of the tracker's table has (max_frames' limit).
constexpr std::uint32_t kMaxReportFrames = 256;

// A stack of the tracker's table as it hands it out, each frame with its module's path and bias;
// none for kNoStackId.
struct TableStack {
  ExitFrame frames[kMaxReportFrames];
  std::uint32_t n = 0;

  TableStack(const ExitData& d, std::uint32_t id)
      : n(id == kNoStackId ? 0 : d.stack(id, frames, kMaxReportFrames)) {}
  const ExitFrame* begin() const { return frames; }
  const ExitFrame* end() const { return frames + n; }
};

// A frame of the table as the report model has it, not yet named.
Frame raw_frame(const ExitFrame& e) {
  Frame f;
  f.address = e.address;
  f.module = e.module;
  if (!f.module.empty()) f.offset = f.address - e.bias;
  return f;
}

Stack raw_stack(const ExitData& d, std::uint32_t id) {
  const TableStack table(d, id);
  Stack stack;
  stack.reserve(table.n);
  for (const ExitFrame& e : table) stack.push_back(raw_frame(e));
  return stack;
}

// Names the functions of every frame the report may name, at once (Symbolizer::name_ahead): every
// leak site's (the still-reachable ones only if listed: the JSON report, show_reachable; a short
// process's report had three of every four stacks reachable, a sed's: 61 reachable sites, 2
// leaks, 5 peak sites), the holders suppressions match, the peak sites, the heap errors.
void name_ahead(const ExitData& d, const Report& r, bool reachable_listed, Symbolizer& sym) {
  std::unordered_map<std::string_view, std::vector<std::uint64_t>> by_module;
  auto add = [&](const Frame& f) {
    if (!f.module.empty()) by_module[f.module].push_back(f.offset);
  };
  auto add_table = [&](std::uint32_t id) {
    for (const ExitFrame& e : TableStack(d, id))
      if (*e.module) by_module[e.module].push_back(e.address - e.bias);
  };
  for (const Leak& l : r.leaks)
    if (reachable_listed || l.kind != "reachable") {
      add_table(l.stack_id);
      add_table(l.holder_id);
    }
  for (const PeakSite& p : r.peak) std::for_each(p.stack.begin(), p.stack.end(), add);
  for (const HeapError& e : r.errors) {
    std::for_each(e.stack.begin(), e.stack.end(), add);
    if (e.alloc_stack) std::for_each(e.alloc_stack->begin(), e.alloc_stack->end(), add);
    if (e.free_stack) std::for_each(e.free_stack->begin(), e.free_stack->end(), add);
  }
  for (auto& [path, offsets] : by_module) sym.name_ahead(std::string(path), std::move(offsets));
}

// Copies out and symbolizes the stacks a report shows: the leak sites `leaks` (indexes into
// r.leaks), the peak sites, the heap errors. Each stack named is a step of the report's progress.
void symbolize_shown(const ExitData& d, Report& r, Symbolizer& sym,
                     std::atomic<std::uint64_t>* progress, const std::vector<std::size_t>& leaks) {
  auto symbolize = [&](Stack& stack) {
    if (progress) progress->fetch_add(1, std::memory_order_relaxed);
    stack = sym.symbolize(stack);
  };
  for (std::size_t i : leaks) {
    Leak& l = r.leaks[i];
    if (l.stack_id != kNoStackId) l.stack = raw_stack(d, std::exchange(l.stack_id, kNoStackId));
    symbolize(l.stack);
  }
  for (PeakSite& p : r.peak) symbolize(p.stack);
  for (HeapError& e : r.errors) {
    symbolize(e.stack);
    if (e.alloc_stack) symbolize(*e.alloc_stack);
    if (e.free_stack) symbolize(*e.free_stack);
  }
}

// Which pattern of a set of suppressions hides a leak whose stacks are still the table's: each
// distinct frame is named (by `name`) and matched once. A compiler's 34,000 leak sites, copied
// out, named and then matched frame by frame, were 1.8 million frames, each with its own copies
// of its names: a second of matching, and 500 MB (clang++ -O2 -g on tracker/reporter.cc).
class FrameMatches {
 public:
  using Namer = std::function<Stack(const Frame&)>;
  FrameMatches(const ExitData& d, const Suppressions& s, Namer name,
               std::atomic<std::uint64_t>* progress)
      : data_(d), suppressions_(s), name_(std::move(name)), progress_(progress) {}

  std::size_t operator()(const Leak& l, bool holder) {
    if (progress_) progress_->fetch_add(1, std::memory_order_relaxed);
    std::size_t first = suppressions_.size();
    for (const ExitFrame& e : TableStack(data_, holder ? l.holder_id : l.stack_id)) {
      auto [at, fresh] = memo_.try_emplace(Key{e.address, e.module, e.bias});
      if (fresh) at->second = suppressions_.first_match(name_(raw_frame(e)));
      first = std::min(first, at->second);
    }
    return first;
  }

 private:
  // A frame is its address in one load of one module (one address may be two libraries' code,
  // one unloaded). The table's path of a module stays where it is: compared by where it is.
  struct Key {
    std::uintptr_t address;
    const char* module;
    std::uintptr_t bias;
    bool operator==(const Key&) const = default;
  };
  struct Hash {
    std::size_t operator()(const Key& k) const {
      return std::hash<std::uintptr_t>{}(k.address ^ (k.bias << 13) ^
                                         (reinterpret_cast<std::uintptr_t>(k.module) << 7));
    }
  };

  const ExitData& data_;
  const Suppressions& suppressions_;
  Namer name_;
  std::atomic<std::uint64_t>* progress_;
  std::unordered_map<Key, std::size_t, Hash> memo_;
};

// One entry for each thread (two of one id and name, an id the kernel gave out again, are one
// here), most bytes first.
void combine_threads(std::vector<LeakThread>& threads) {
  const auto same = [](const LeakThread& a, const LeakThread& b) {
    return a.thread == b.thread && a.name == b.name;
  };
  std::sort(threads.begin(), threads.end(), [](const LeakThread& a, const LeakThread& b) {
    return a.thread != b.thread ? a.thread < b.thread : a.name < b.name;
  });
  std::size_t n = 0;
  for (std::size_t i = 0; i < threads.size(); ++i) {
    if (n > 0 && same(threads[n - 1], threads[i])) {
      threads[n - 1].blocks += threads[i].blocks;
      threads[n - 1].bytes += threads[i].bytes;
    } else if (n++ != i) {
      threads[n - 1] = std::move(threads[i]);
    }
  }
  threads.resize(n);
  std::stable_sort(threads.begin(), threads.end(),
                   [](const LeakThread& a, const LeakThread& b) { return a.bytes > b.bytes; });
}

// Leak sites whose stacks are the same code: one entry. A library unloaded and loaded again
// starts a new unload epoch, in which its call sites are new stacks (the same return address may
// be other code after a dlclose), so 200 load-leak-unload rounds listed the same leak 200 times.
// Same code means the same module and offset in every frame (the address where no module is
// known); the first entry's stack stays. The stacks are still the table's.
void merge_same_sites(const ExitData& d, Report& r) {
  std::unordered_map<std::string_view, std::uint64_t> module_number;  // by path: 1, 2, ...
  auto key = [&](const Leak& l) {
    std::string k = l.kind;
    for (const ExitFrame& e : TableStack(d, l.stack_id)) {
      std::uint64_t words[2] = {0, e.address};  // no module: the address
      if (*e.module) {
        words[0] = module_number.try_emplace(e.module, module_number.size() + 1).first->second;
        words[1] = e.address - e.bias;
      }
      k.append(reinterpret_cast<const char*>(words), sizeof words);
    }
    return k;
  };
  std::unordered_map<std::string, std::size_t> first_of;
  std::vector<Leak> merged;
  merged.reserve(r.leaks.size());
  for (Leak& l : r.leaks) {
    auto [at, fresh] = first_of.try_emplace(key(l), merged.size());
    if (fresh) {
      merged.push_back(std::move(l));
      continue;
    }
    Leak& into = merged[at->second];
    into.bytes += l.bytes;
    into.blocks += l.blocks;
    into.first_ms = std::min(into.first_ms, l.first_ms);
    into.last_ms = std::max(into.last_ms, l.last_ms);
    into.threads.insert(into.threads.end(), l.threads.begin(), l.threads.end());
    combine_threads(into.threads);
    into.thread_count = into.threads.size();
  }
  std::stable_sort(merged.begin(), merged.end(),
                   [](const Leak& a, const Leak& b) { return a.bytes > b.bytes; });
  r.leaks = std::move(merged);
}

// The leaks' stacks are still the table's: sym names their frames. The built-in suppressions
// name functions of the dynamic linker, which the symbol table names: a text-only report names
// nothing else in full but the sites it lists. A user's may name a file or an inlined function.
void apply_suppressions(const ExitData& d, Report& r, const char* path, Symbolizer& sym,
                        std::atomic<std::uint64_t>* progress) {
  std::vector<std::string> warnings;
  const Suppressions builtin = Suppressions::builtin();
  builtin.apply(
      r, FrameMatches(
             d, builtin, [&](const Frame& f) { return Stack{sym.symbol_only(f)}; }, progress));
  if (path && *path) {
    Suppressions user;
    user.load(path, &warnings);
    user.apply(r, FrameMatches(
                      d, user, [&](const Frame& f) { return sym.symbolize(Stack{f}); }, progress));
  }
  for (const std::string& w : warnings) diagnostics().warn("warning: {}", w);
}

// ---- the report model, from the plain data libheapledger.so gathered ----

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

// A program that wrote a new title over its command line (setproctitle: nginx, redis, postgres)
// either wrote across the words' bounds (a title longer than its first word), or blanked the
// words and wrote the title into the first one. One that hid a word (openssl's NULs over a -k
// password, curl's spaces over -u's) did neither.
bool retitled(const std::string& started, const std::string& now) {
  const std::size_t first_end = started.find('\0');
  if (first_end == std::string::npos || first_end + 1 >= started.size()) return false;  // one word
  for (std::size_t end = first_end; end != std::string::npos && end + 1 < started.size();
       end = started.find('\0', end + 1))
    if (end < now.size() && now[end] != '\0') return true;
  const std::size_t title_end = std::min(now.find('\0'), now.size());
  const std::size_t blank_to = std::min(now.size(), started.size());
  const std::size_t written = now.find_first_not_of('\0', title_end);
  return title_end <= first_end && (written == std::string::npos || written >= blank_to) &&
         now.compare(0, title_end, started, 0, first_end) != 0;
}

ProcessInfo process_info(const ExitData& d) {
  ProcessInfo p;
  p.pid = getpid();
  p.ppid = getppid();
  // The main program's path as the loaded objects' first scan found it (see main_program_path
  // in modules.cc: also under an explicitly run loader, and without /proc); else now, through
  // this thread (once the main thread has ended, pthread_exit, /proc/self's exe reads empty), or
  // the path execve() was given.
  if (d.exe) p.exe = d.exe;
  char exe[4096];
  ssize_t n = p.exe.empty() ? readlink("/proc/thread-self/exe", exe, sizeof exe - 1) : 0;
  if (p.exe.empty() && n <= 0) n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) p.exe.assign(exe, static_cast<std::size_t>(n));
  if (p.exe.empty())
    if (const auto* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN))) p.exe = execfn;
  // The words the program started with, each as its bytes read now: what a program hid since
  // stays hidden (openssl writes NULs over a -k password, curl spaces over -u's, mysql x's),
  // and the words keep their count (read at exit alone, a word blanked with NULs came back as
  // one empty word per byte). A program that wrote a new title over them (setproctitle) has
  // that title for its words, as ps shows it (cut at the old words' bounds, nginx's lost a
  // letter at each: "nginx: w" "rker process", a user trial's). Where the command line cannot
  // be read now, the words as they started.
  std::string now = read_file("/proc/thread-self/cmdline");
  if (now.empty()) now = read_file("/proc/self/cmdline");
  const std::string started = d.cmdline ? std::string(d.cmdline, d.cmdline_len) : now;
  const bool title = !now.empty() && retitled(started, now);
  for (std::size_t pos = 0; title && pos < now.size();) {
    const std::size_t end = std::min(now.find('\0', pos), now.size());
    if (end > pos) p.argv.push_back(now.substr(pos, end - pos));
    pos = end + 1;
  }
  for (std::size_t pos = 0; !title && pos < started.size();) {
    std::size_t end = started.find('\0', pos);
    if (end == std::string::npos) end = started.size();
    std::string word;
    if (now.empty()) {
      word = started.substr(pos, end - pos);
    } else if (pos < now.size()) {
      word = now.substr(pos, end - pos);
      std::erase(word, '\0');
    }
    p.argv.push_back(std::move(word));
    pos = end + 1;
  }
  p.duration_ms = d.duration_ms;
  if (d.forked_us >= 0) p.forked_ms = to_ms(static_cast<std::uint64_t>(d.forked_us));
  if (d.signal > 0) {
    const char* abbrev = sigabbrev_np(d.signal);
    p.signal = abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", d.signal);
  }
  return p;
}

const char* reach_name(std::uint8_t reach) {
  constexpr const char* kNames[] = {"unknown", "definite", "indirect", "possible", "reachable"};
  return reach < 5 ? kNames[reach] : "unknown";
}

// Which still-reachable sites the leak list names; the others are counted (in the summary, and
// as reachable_sites_omitted). A program that frees nothing at exit (compilers, interpreters)
// holds tens of thousands of reachable call sites: listing them all would make the report huge
// and slow to symbolize, so only the `limit` largest are (reachable_sites, 500 unless set; all
// with show_reachable). A forked child lists only those it allocated from since the fork: the
// others are its parent's, listed in the parent's own report. Every bash `$(...)` subshell listed
// the shell's few hundred sites again, 1 MB of JSON and 20 ms each (a user trial's 300-iteration
// loop left 752 MB). A child's blocks are stamped no earlier than its fork, its inherited ones
// earlier, even within one tick of the coarse clock (tracker.cc, postfork_child). Past the time
// a block's record can hold (kSiteTimeLimitUs: 12.7 days of the process), times wrap and tell
// nothing: a child forked then lists its sites as any process does (a review's: it would have
// listed none).
struct ReachableListing {
  bool all;
  std::size_t limit;
  std::int64_t forked_us;  // < 0: not a forked child
  std::size_t listed = 0;

  bool lists(const ExitSite& site) {
    if (all) return true;
    const bool inherited = forked_us >= 0 &&
                           static_cast<std::uint64_t>(forked_us) < kSiteTimeLimitUs &&
                           site.last_us < static_cast<std::uint64_t>(forked_us);
    if (inherited || listed == limit) return false;
    ++listed;
    return true;
  }
};

// Each thread number's id and name, asked of the tracker once a report: a running thread's name
// is a read of /proc (6 us), and the main thread's blocks are at most of the sites.
class ThreadNames {
 public:
  explicit ThreadNames(const ExitData& d) : d_(d) {}
  const LeakThread& operator()(std::uint32_t number) {
    auto [it, fresh] = known_.try_emplace(number);
    std::int32_t tid = 0;
    char name[16] = {};
    if (fresh && d_.thread && d_.thread(number, &tid, name)) {
      it->second.thread = tid;
      it->second.name = name;
    }
    return it->second;
  }

 private:
  const ExitData& d_;
  std::unordered_map<std::uint32_t, LeakThread> known_;
};

// The threads that allocated a site's blocks (a record keeps a thread's number).
void add_threads(const ExitData& d, const ExitSite& site, ThreadNames& names, Leak& l) {
  if (!d.shares) return;
  for (std::uint32_t k = 0; k < site.n_shares; ++k) {
    const ExitThreadShare& share = d.shares[site.first_share + k];
    LeakThread& t = l.threads.emplace_back(names(share.thread));
    t.blocks = share.blocks;
    t.bytes = share.bytes;
  }
  combine_threads(l.threads);
  l.thread_count = l.threads.size();
}

// Every site counts in the summary; the leak list gets the sites largest first, the
// still-reachable ones as ReachableListing says. A site left out never has its stack copied:
// cc1plus holds some 10,000 sites at exit, ~40 frames each, and with them all copied before the
// list was cut its text report cost 58 MB and 0.28 s more than none (now 12 MB and 0.03 s;
// docs/internals.md, Exit report memory).
void add_leaks(const ExitData& d, Report& r, ReachableListing reachable) {
  Summary& s = r.summary;
  ThreadNames names(d);
  std::vector<std::size_t> order(d.n_sites);
  for (std::size_t i = 0; i < d.n_sites; ++i) {
    const ExitSite& site = d.sites[i];
    const std::string_view kind = reach_name(site.reach);
    s.live_bytes += site.bytes;
    s.live_blocks += site.blocks;
    if (kind == "possible") {
      s.possible_bytes += site.bytes;
      s.possible_blocks += site.blocks;
    } else if (kind == "reachable") {
      s.reachable_bytes += site.bytes;
      s.reachable_blocks += site.blocks;
    } else {
      s.leaked_bytes += site.bytes;
      s.leaked_blocks += site.blocks;
    }
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return d.sites[a].bytes > d.sites[b].bytes;
  });
  for (std::size_t i : order) {
    const ExitSite& site = d.sites[i];
    const std::string_view kind = reach_name(site.reach);
    if (kind == "reachable" && !reachable.lists(site)) {
      ++r.reachable_sites_omitted;
      continue;
    }
    Leak& l = r.leaks.emplace_back();
    l.kind = kind;
    l.bytes = site.bytes;
    l.blocks = site.blocks;
    l.first_ms = to_ms(site.first_us);
    l.last_ms = to_ms(site.last_us);
    l.stack_id = site.stack;  // copied out if it is shown (symbolize_shown)
    if (site.holder != kNoHolder) l.holder_id = site.holder;
    add_threads(d, site, names, l);
  }
}

// new T[n] of a type with a destructor hands the program its block past the count of elements
// (8 bytes), so `delete p` (or free) of such an array is a free 8 bytes inside a block from
// new[]: that was all the report said (a user trial's).
std::string array_cookie_hint(std::uint64_t offset, AllocKind allocated, AllocKind released) {
  if (offset != sizeof(std::size_t) || allocated != AllocKind::kNewArray ||
      released == AllocKind::kNewArray || released == AllocKind::kInternal)
    return "";
  return fmt::format(", allocated with new[]: released with {} where delete[] was due?",
                     release_call_name(released));
}

HeapError heap_error(const ExitData& d, const ExitError& e) {
  constexpr const char* kKinds[] = {"double_free", "invalid_free", "mismatched_free"};
  HeapError h;
  h.kind = kKinds[e.kind < 3 ? e.kind : 1];
  h.address = e.address;
  if (e.tid > 0) h.thread = e.tid;
  if (e.thread_name) h.thread_name = e.thread_name;
  if (e.free_tid > 0) h.free_thread = e.free_tid;
  if (e.free_thread_name) h.free_thread_name = e.free_thread_name;
  const auto allocated = static_cast<AllocKind>(e.allocated), released = static_cast<AllocKind>(e.released);
  char both_ends[96];
  h.detail = e.detail ? e.detail : "";
  if (e.kind == 2)
    h.detail = mismatch_detail(e.detail, allocated, released, both_ends, sizeof both_ends,
                               e.block_size, e.released_size);
  if (e.block != 0) h.block = HeapError::Block{e.block, e.block_size};  // a mismatched free's own
  if (e.block != 0 && e.kind != 2) {  // an invalid free near or inside a block: where
    const std::uint64_t offset = e.address - e.block;
    if (e.address < e.block)
      h.detail = fmt::format("{} bytes before a {}-byte block at {:#x}", e.block - e.address,
                             e.block_size, e.block);
    else if (offset < e.block_size)
      h.detail = fmt::format("{} bytes inside a {}-byte block at {:#x}{}", offset, e.block_size,
                             e.block, array_cookie_hint(offset, allocated, released));
    else
      h.detail = fmt::format("{} bytes past the end of a {}-byte block at {:#x}",
                             offset - e.block_size, e.block_size, e.block);
    if (e.detail && !std::strcmp(e.detail, kPassedToRealloc)) h.detail += ", passed to realloc";
  }
  if (e.module && *e.module)  // a global, a string literal: the module whose image it is in
    h.detail =
        fmt::format("in the image of {} (its code or static data), not a heap block", e.module);
  h.stack = raw_stack(d, e.stack);
  if (e.has_alloc) h.alloc_stack = raw_stack(d, e.alloc_stack);
  if (e.has_free) h.free_stack = raw_stack(d, e.free_stack);
  return h;
}

Report build_report(const ExitData& d, const ReportRequest& req) {
  Report r;
  r.tool_version = HEAPLEDGER_VERSION;
  r.process = process_info(d);
  r.summary.allocations = d.allocations;
  r.summary.frees = d.frees;
  r.summary.bytes_allocated = d.bytes_allocated;
  r.summary.peak_bytes = d.peak_bytes;
  r.summary.peak_blocks = d.peak_blocks;
  r.summary.peak_time_ms = to_ms(d.peak_time_us);
  r.summary.errors = d.errors_total;
  add_leaks(d, r,
            ReachableListing{req.show_reachable, static_cast<std::size_t>(req.reachable_sites),
                             d.forked_us});
  if (d.scan_failed) {  // no leak classified, none ruled out: the live blocks count as leaked
    r.scan = ScanInfo{.failed = true};
    r.scan_failure =
        d.scan_maps_error == 0
            ? "out of memory"
            : fmt::format("/proc/self/maps cannot be read: {}{}", std::strerror(d.scan_maps_error),
                          d.scan_maps_error == ENOENT ? "; is /proc mounted?" : "");
    r.summary.live_bytes = r.summary.leaked_bytes = d.live_bytes;
    r.summary.live_blocks = r.summary.leaked_blocks = d.live_blocks;
  }
  for (std::size_t i = 0; i < d.n_peak; ++i)
    r.peak.push_back(PeakSite{d.peak[i].bytes, d.peak[i].blocks, raw_stack(d, d.peak[i].stack)});
  for (std::size_t i = 0; i < d.n_errors; ++i) r.errors.push_back(heap_error(d, d.errors[i]));
  for (std::size_t i = 0; i < d.n_timeline; ++i)
    r.timeline.push_back(TimelinePoint{to_ms(d.timeline[i].t_us),
                                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.timeline[i].bytes))});
  r.timeline.push_back(TimelinePoint{r.process.duration_ms, r.summary.live_bytes});
  // The peak is a point of the curve too (the sampled points may all have missed it). Among
  // points of its own time, before the last: that one says what was live once that time was
  // over (a burst within one tick of the clock: up to the peak and down again).
  if (d.peak_bytes > 0) {
    const TimelinePoint peak{r.summary.peak_time_ms, d.peak_bytes};
    const auto by_time = [](const TimelinePoint& a, const TimelinePoint& b) {
      return a.t_ms < b.t_ms;
    };
    auto [first, at] = std::equal_range(r.timeline.begin(), r.timeline.end(), peak, by_time);
    if (std::none_of(first, at, [&](const TimelinePoint& p) { return p.bytes == peak.bytes; }))
      r.timeline.insert(first == at ? at : at - 1, peak);
  }
  if (d.scanned)
    r.scan = ScanInfo{d.scan_ms,         d.scan_threads, d.scan_threads_stopped, d.scan_root_bytes,
                      d.scan_heap_bytes, false,          d.scan_threads_held};
  return r;
}

void write_reports_or_throw(const ExitData* data, const ReportRequest* req,
                            ReportOutcome* outcome) {
  Report report = build_report(*data, *req);
  // Decided before symbolizing, which may run out of memory (what suppressions take away is then
  // still counted); until here, the tracker's count stands.
  outcome->leaked_blocks = report.summary.leaked_blocks;
  outcome->errors = report.summary.errors;
  bool text = std::strcmp(req->log_path, "none") != 0;
  bool json = req->json_path[0] != 0;
  bool suppress = req->suppressions_path && *req->suppressions_path;
  heapledger::TextOptions opts;
  opts.show_reachable = req->show_reachable;
  opts.max_leaks = static_cast<std::size_t>(req->max_leaks);
  opts.errors_only = req->errors_only;
  if (!json) opts.rest_hint = "max_leaks=0 lists them all";
  // Suppressions match symbolized names; with no report to write and no suppressions that could
  // change the exit status, symbolizing would be wasted work.
  if (text || json || suppress) {
    Symbolizer sym;
    if (data->maps) sym.use_maps({data->maps, data->maps_len});  // the scan's: not read again
    name_ahead(*data, report, json || req->show_reachable, sym);
    if (!req->errors_only)
      apply_suppressions(*data, report, req->suppressions_path, sym, req->progress);
    merge_same_sites(*data,
                     report);  // after: an indirect site comes split by its holders until then
    if (req->quiet && report.summary.leaked_blocks == 0 && report.summary.errors == 0) text = false;
    std::vector<std::size_t> shown;  // JSON: every site; text: those listed (25 of 33,000)
    if (json) {
      shown.resize(report.leaks.size());
      std::iota(shown.begin(), shown.end(), std::size_t{0});
    } else if (text) {
      const LeakListing listing = list_leaks(report, opts);
      shown.assign(listing.order.begin(), listing.order.begin() + listing.with_stacks);
    }
    if (json || text) symbolize_shown(*data, report, sym, req->progress, shown);
    for (const std::string& module : sym.unreadable_replaced())
      diagnostics().warn(
          "warning: {} was removed or replaced on disk since it was loaded, and the file loaded "
          "cannot be read here (/proc/self/map_files takes CAP_SYS_ADMIN): its frames are not "
          "named",
          module);
  }
  if (text) {
    const std::string rendered = render_text(report, opts);
    deliver("text", req->log_path, report.process, [&](const Sink& sink) { sink(rendered); });
  }
  if (req->progress) req->progress->fetch_add(1, std::memory_order_relaxed);
  if (json)
    deliver("JSON", req->json_path, report.process, [&](const Sink& sink) {
      // Gathered into writes of 64 KiB, the closing newline in the last: on a stream the program
      // still writes to (a thread printing as it exits), each write is a point its lines can land
      // in, and one between the closing brace and its newline left the JSON unreadable (a
      // user trial's `heapledger run --json -`).
      constexpr std::size_t kWrite = 64 << 10;
      std::string pending;
      write_json(report, 2, [&](std::string_view piece) {
        pending.append(piece);
        if (pending.size() >= kWrite) sink(pending), pending.clear();
      });
      pending.push_back('\n');
      sink(pending);
    });
  outcome->leaked_blocks = report.summary.leaked_blocks;
  outcome->errors = report.summary.errors;
}

// Out of memory (a program that used up its limit on address space or data leaves the report the
// room heapledger kept for it, which a large report can outgrow): said, never thrown on into the
// program's exit path, where it ended the process with "terminate called after throwing an
// instance of 'std::bad_alloc'" and SIGABRT. A report file being written is left unfinished and
// unnamed (write_file_atomically).
void write_reports(const ExitData* data, const ReportRequest* req, ReportOutcome* outcome) {
  begin_delivery(req->progress, req->writing_to, req->flush_stdout);
  try {
    write_reports_or_throw(data, req, outcome);
  } catch (const std::bad_alloc&) {
    try {  // the line's logger may be made only now
      say("out of memory while writing the report: what was not written by then is lost");
    } catch (const std::bad_alloc&) {
    }
  }
}

}  // namespace
}  // namespace heapledger::detail

extern "C" __attribute__((visibility("default"))) const heapledger::detail::ReporterApi*
heapledger_reporter_api() {
  using namespace heapledger::detail;
  static const ReporterApi api{kRuntimeAbiVersion, set_streams, warn, say, write_reports};
  return &api;
}
