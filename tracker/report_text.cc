// The text report: what a person reads on stderr when the program exits, and what
// `heapledger report` prints. Layout: header, summary, heap errors, leak sites, suppressions,
// peak call sites.
#include "tracker/report_text.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace heapledger {
namespace {

// Accumulates the report, one "==PID== "-prefixed line at a time.
class Lines {
 public:
  explicit Lines(std::int64_t pid) : prefix_(fmt::format("=={}==", pid)) {}

  template <class... Args>
  void add(fmt::format_string<Args...> f, Args&&... args) {
    out_ += prefix_;
    out_ += ' ';
    fmt::format_to(std::back_inserter(out_), f, std::forward<Args>(args)...);
    out_ += '\n';
  }
  void blank() { out_ += prefix_ + '\n'; }
  std::string take() { return std::move(out_); }

 private:
  std::string prefix_;
  std::string out_;
};

// ---- small formatting helpers ----

// Control characters escaped, so a name or path can never break the one-line-per-line layout.
std::string clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
    else
      out += char(c);
  }
  return out;
}

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == path.npos ? path : path.substr(slash + 1);
}

// 1234567 -> "1,234,567"
std::string with_commas(std::uint64_t n) {
  std::string digits = fmt::format("{}", n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// (1, "block") -> "1 block", (2048, "block") -> "2,048 blocks"
std::string count(std::uint64_t n, std::string_view noun) {
  return fmt::format("{} {}{}", with_commas(n), noun, n == 1 ? "" : "s");
}

std::string format_ms(double ms) {
  return ms < 1000 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.2f} s", ms / 1000);
}

std::size_t shown(std::size_t n, std::size_t limit) { return limit == 0 ? n : std::min(n, limit); }

// An argument as a shell would need it typed.
std::string shell_word(std::string_view s) {
  constexpr std::string_view kSafe =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
  if (!s.empty() && s.find_first_not_of(kSafe) == s.npos) return std::string(s);
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The header's command line stops after about kCommandLineChars: `find ... -exec grep {} +` or
// a linker's argument list repeated the whole of it there, 205 KB on one line (a user trial).
// And each word after kWordChars bytes: one argument of 20 KB made a first line of 20 KB (a user
// trial's). The JSON report's process.argv has every word whole.
constexpr std::size_t kCommandLineChars = 500;
constexpr std::size_t kWordChars = 200;

// A word of the header's command line, as a shell would need it typed, cut at a character
// boundary after kWordChars bytes: 'aaaa...'...(19,800 more bytes).
std::string header_word(std::string_view word) {
  if (word.size() <= kWordChars) return shell_word(word);
  std::size_t cut = kWordChars;
  while (cut > 0 && (static_cast<unsigned char>(word[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return fmt::format("{}...({})", shell_word(word.substr(0, cut)),
                     count(word.size() - cut, "more byte"));
}

// The executable, then the name it was started by where that is another (a symlink's:
// redis-server is redis-check-rdb; a new title a server wrote over its command line: "nginx:
// worker process"), then the arguments.
std::string command_line(const ProcessInfo& p) {
  std::string out = header_word(p.exe.empty() && !p.argv.empty() ? p.argv[0] : p.exe);
  if (p.exe.empty() && p.argv.empty()) out = "(unknown program)";
  if (!p.exe.empty() && !p.argv.empty() && base_name(p.argv[0]) != base_name(p.exe))
    out += " (as " + header_word(p.argv[0]) + ")";
  for (std::size_t i = 1; i < p.argv.size(); ++i) {
    if (out.size() >= kCommandLineChars) {
      out += fmt::format(" ... ({})", count(p.argv.size() - i, "more argument"));
      break;
    }
    out += ' ' + header_word(p.argv[i]);
  }
  return clean(out);
}

// ---- frames and stacks ----

// "main  demo.c:40", "malloc  (libc.so.6)", or without a function name "libc.so.6+0x2a1b0".
std::string where(const Frame& f) {
  std::string module = f.module.empty() ? "??" : clean(base_name(f.module));
  if (!f.function) return f.module.empty() ? module : fmt::format("{}+{:#x}", module, f.offset);
  std::string out = clean(*f.function);
  if (!f.file) return fmt::format("{}  ({})", out, module);
  out += "  " + clean(base_name(*f.file));
  if (f.line) out += fmt::format(":{}", *f.line);
  return out;
}

bool same_frame(const Frame& a, const Frame& b) {
  return a.address == b.address && a.function == b.function && a.file == b.file && a.line == b.line;
}

// Frame i was inlined into frame i+1: same address, different source position. (Identical
// neighbours are recursion, not inlining.)
bool is_inlined(const Stack& s, std::size_t i) {
  return i + 1 < s.size() && s[i + 1].address == s[i].address && !same_frame(s[i], s[i + 1]);
}

bool is_standard_library(const Frame& f);
bool is_allocation_function(const Frame& f);

// Frames up to max_frames. Where those are all the standard library's (make_shared's inlined
// frames come eight deep), the first frame past them that is not is shown as well: with
// --max-frames 3 a leak's stack showed no line of the program's own code (a user trial's).
void add_stack(Lines& out, const Stack& s, const TextOptions& o) {
  if (s.empty()) return out.add("    (no stack recorded)");
  const auto own = [](const Frame& f) {
    return !is_standard_library(f) && !is_allocation_function(f);
  };
  std::size_t n = shown(s.size(), o.max_frames);
  std::size_t first_own = s.size();  // none to add
  if (n < s.size() && std::none_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n), own))
    first_own = static_cast<std::size_t>(
        std::find_if(s.begin() + static_cast<std::ptrdiff_t>(n), s.end(), own) - s.begin());
  const int width = int(fmt::formatted_size("{}", first_own < s.size() ? first_own : n - 1));
  const auto frame = [&](std::size_t i) {
    out.add("    #{:<{}} {:#x} {}{}", i, width, s[i].address, where(s[i]),
            is_inlined(s, i) ? "  [inlined]" : "");
  };
  for (std::size_t i = 0; i < n; ++i) frame(i);
  if (first_own < s.size()) {
    if (first_own > n) out.add("    ... {}", count(first_own - n, "more frame"));
    frame(first_own);
    n = first_own + 1;
  }
  if (n < s.size()) out.add("    ... {}", count(s.size() - n, "more frame"));
}

// ---- summary ----

// A forked child's times count from its ancestor's start, as its blocks' do: the header says when
// it was forked (a PostgreSQL backend that lived 0.07 s showed "3.38 s", a user trial's). And a
// process that a signal ends says which.
void add_header(Lines& out, const Report& r) {
  std::string version = r.tool_version.empty() ? "" : " " + clean(r.tool_version);
  const ProcessInfo& p = r.process;
  const std::string forked = p.forked_ms ? ", forked at " + format_ms(*p.forked_ms) : "";
  const std::string ended = p.signal ? ", ended by " + clean(*p.signal) : "";
  out.add("{}{} — {} (pid {}, {}{}{})", clean(r.tool_name), version, command_line(p), p.pid,
          format_ms(p.duration_ms), forked, ended);
}

// "  (possibly lost: 1.0 KiB, suppressed: 64 B)" listing only what is not zero.
std::string leak_extras(const Summary& s) {
  std::vector<std::string> parts;
  if (s.possible_bytes) parts.push_back("possibly lost: " + human_bytes(s.possible_bytes));
  if (s.reachable_bytes) parts.push_back("still reachable: " + human_bytes(s.reachable_bytes));
  if (s.suppressed_bytes) parts.push_back("suppressed: " + human_bytes(s.suppressed_bytes));
  return parts.empty() ? "" : fmt::format("   ({})", fmt::join(parts, ", "));
}

void add_summary(Lines& out, const Summary& s, bool leaks_known) {
  out.add("SUMMARY: {}, {}, {} allocated", count(s.allocations, "allocation"),
          count(s.frees, "free"), human_bytes(s.bytes_allocated));
  out.add("  peak: {} in {} at {}", human_bytes(s.peak_bytes), count(s.peak_blocks, "block"),
          format_ms(s.peak_time_ms));
  out.add("  live at exit: {} in {}", human_bytes(s.live_bytes), count(s.live_blocks, "block"));
  if (leaks_known)
    out.add("  leaked: {} in {}{}", human_bytes(s.leaked_bytes), count(s.leaked_blocks, "block"),
            leak_extras(s));
  else
    out.add("  leaked: unknown");
  out.add("  heap errors: {}", with_commas(s.errors));
}

// Threads the scan could not stop were scanned whole, stale frames included: a leaked pointer
// left in one of them counts as a root, so the leak numbers can be too low.
void add_scan_warning(Lines& out, const std::optional<ScanInfo>& scan, const std::string& failure) {
  if (scan && scan->failed)
    return out.add(
        "  warning: the leak scan failed ({}): no leak is classified, none is listed below, and "
        "every live block counts as leaked",
        failure.empty() ? "out of memory" : failure);
  if (!scan) return;
  if (scan->threads > scan->threads_stopped)
    out.add(
        "  warning: {} of {} could not be stopped for the leak scan, so their whole stacks were "
        "treated as roots (results may hide leaks)",
        with_commas(scan->threads - scan->threads_stopped), count(scan->threads, "thread"));
  if (scan->threads_held > 0)
    out.add(
        "  note: {} of {} had the scan's signal blocked and {} held asleep in a system call, "
        "registers unread (a pointer kept only in one of them is not seen)",
        with_commas(scan->threads_held), count(scan->threads, "thread"),
        scan->threads_held == 1 ? "was" : "were");
}

// ---- heap errors ----

std::string_view error_label(const std::string& kind) {
  if (kind == "double_free") return "double free";
  if (kind == "invalid_free") return "invalid free";
  if (kind == "mismatched_free") return "mismatched free";
  return kind;
}

// The tracker's detail when it gave one, else what the kind means in general.
std::string error_explanation(const HeapError& e) {
  if (!e.detail.empty()) return fmt::format(" ({})", clean(e.detail));
  if (e.kind == "invalid_free") return " (not a heap block)";
  if (e.kind == "mismatched_free") return " (deallocator does not match allocator)";
  return "";
}

// Heap errors of one kind from one call site (the same frames where the error happened) are
// one entry, shown by the first of them with how many the report kept from there: 5,000 double
// frees from one line were 25 identical entries, where memcheck says "5000 errors from 1
// contexts" (a user trial's). Errors with no stack recorded are not put together: nothing says
// they share a place. Returns the index of each entry's first error, and its count.
std::vector<std::pair<std::size_t, std::uint64_t>> error_sites(
    const std::vector<HeapError>& errors) {
  std::vector<std::pair<std::size_t, std::uint64_t>> sites;
  std::map<std::pair<std::string_view, std::vector<std::uint64_t>>, std::size_t> site_of;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const HeapError& e = errors[i];
    if (e.stack.empty()) {
      sites.emplace_back(i, 1);
      continue;
    }
    std::vector<std::uint64_t> where;
    where.reserve(e.stack.size());
    for (const Frame& f : e.stack) where.push_back(f.address);
    auto [at, fresh] = site_of.try_emplace({e.kind, std::move(where)}, sites.size());
    if (fresh)
      sites.emplace_back(i, 1);
    else
      ++sites[at->second].second;
  }
  return sites;
}

// A thread as the report names it: "4121 (worker-2)", its id and, if it had one, its name.
std::string thread_label(int id, const std::string& name) {
  return name.empty() ? fmt::format("{}", id) : fmt::format("{} ({})", id, clean(name));
}

// counted: every heap error seen (summary.errors); the report keeps the first ones with their
// stacks (the tracker's limit), so past them there is only the count to give.
void add_errors(Lines& out, const std::vector<HeapError>& errors, std::uint64_t counted,
                const TextOptions& o) {
  const auto sites = error_sites(errors);
  const std::size_t n = shown(sites.size(), o.max_leaks);
  for (std::size_t i = 0; i < n; ++i) {
    const HeapError& e = errors[sites[i].first];
    const std::uint64_t times = sites[i].second;
    out.blank();
    out.add("HEAP ERROR {} of {}{}: {} of {:#x}{}", with_commas(i + 1), with_commas(sites.size()),
            times > 1 ? fmt::format(" ({} from here; the first shown)", with_commas(times)) : "",
            clean(error_label(e.kind)), e.address, error_explanation(e));
    if (e.thread) out.add("  in thread {}", thread_label(*e.thread, e.thread_name));
    add_stack(out, e.stack, o);
    if (e.alloc_stack) {
      out.add("  allocated at:");
      add_stack(out, *e.alloc_stack, o);
    }
    if (e.free_stack) {
      // A double free's first free may be another thread's (both stacks the same: a trial's).
      out.add(
          "  {}{} at:", e.kind == "double_free" ? "first freed" : "freed",
          e.free_thread ? " in thread " + thread_label(*e.free_thread, e.free_thread_name) : "");
      add_stack(out, *e.free_stack, o);
    }
  }
  if (n < sites.size()) {
    std::uint64_t rest = 0;
    for (std::size_t i = n; i < sites.size(); ++i) rest += sites[i].second;
    out.add("... and {} from {} — {}", count(rest, "more heap error"),
            count(sites.size() - n, "more call site"), o.rest_hint);
  }
  if (counted > errors.size())
    out.add("... and {} counted but not kept (the report keeps the first {} with their stacks)",
            count(counted - errors.size(), "more heap error"), with_commas(errors.size()));
}

// ---- leaks ----

// Definite (and not yet classified) first, then indirect, then possible, reachable last.
int kind_rank(const std::string& kind) {
  if (kind == "definite" || kind == "unknown") return 0;
  if (kind == "indirect") return 1;
  if (kind == "reachable") return 3;
  return 2;
}

std::string kind_label(const std::string& kind) {
  if (kind == "definite") return "definitely lost";
  if (kind == "indirect") return "indirectly lost";
  if (kind == "possible") return "possibly lost";
  if (kind == "reachable") return "still reachable";
  if (kind == "unknown") return "not freed";
  return fmt::format("({})", clean(kind));
}

// Which threads allocated a leak's blocks: "in thread 4121 (worker-2)" as a heap error says it,
// or, from several, the first few with their parts, most bytes first.
std::string thread_label(const LeakThread& t) {
  return t.thread ? thread_label(*t.thread, t.name) : "a thread not known";
}

void add_leak_threads(Lines& out, const Leak& l) {
  if (l.threads.empty()) return;
  constexpr std::size_t kNamed = 4;
  const std::uint64_t n = std::max<std::uint64_t>(l.thread_count, l.threads.size());
  if (n == 1) {
    const LeakThread& t = l.threads.front();
    return out.add("  in {}{}", t.thread ? "thread " : "", thread_label(t));
  }
  std::string parts;
  for (std::size_t k = 0; k < l.threads.size() && k < kNamed; ++k) {
    const LeakThread& t = l.threads[k];
    parts += fmt::format("{}{}: {} in {}", k ? ", " : "", thread_label(t), human_bytes(t.bytes),
                         count(t.blocks, "block"));
  }
  const std::uint64_t named = std::min<std::uint64_t>(l.threads.size(), kNamed);
  out.add("  in {} threads: {}{}", with_commas(n), parts,
          n > named ? fmt::format(", and {} more", with_commas(n - named)) : "");
}

void add_leak(Lines& out, const Leak& l, std::size_t i, std::size_t total, const TextOptions& o) {
  // One time where both read the same ("from 3.9 ms to 3.9 ms" said nothing a second time).
  const std::string first = format_ms(l.first_ms), last = format_ms(l.last_ms);
  std::string when = l.blocks > 1 && first != last ? fmt::format("from {} to {}", first, last)
                                                   : fmt::format("at {}", first);
  out.blank();
  // Reachable blocks are listed (show_reachable) but are not leaks: valgrind's "loss record"
  // covers both, a head that says LEAK over "still reachable" contradicts itself.
  const char* head = kind_rank(l.kind) == 3 ? "REACHABLE" : "LEAK";
  out.add("{} {} of {}: {} in {} {}, allocated {}", head, with_commas(i + 1), with_commas(total),
          count(l.bytes, "byte"), count(l.blocks, "block"), kind_label(l.kind), when);
  add_leak_threads(out, l);
  add_stack(out, l.stack, o);
}

// Sums of counts read back from a JSON report (`heapledger report`): a hand-made one can hold
// counts whose sum does not fit, which wrapped around to a small total. Stops at the largest.
void add_to(std::uint64_t& sum, std::uint64_t v) {
  sum = __builtin_add_overflow(sum, v, &sum) ? UINT64_MAX : sum;
}

struct Totals {
  std::uint64_t sites = 0, bytes = 0, blocks = 0;
  void add(const Leak& l) { ++sites, add_to(bytes, l.bytes), add_to(blocks, l.blocks); }
};

void add_no_leaks_line(Lines& out, const Summary& s) {
  out.blank();
  if (s.allocations == 0) return out.add("no leaks: the program made no heap allocations");
  if (s.live_blocks == 0 && s.allocations == 1)
    return out.add("no leaks: the one heap block allocated by the program was freed");
  if (s.live_blocks == 0)
    return out.add("no leaks: all {} heap blocks allocated by the program were freed",
                   with_commas(s.allocations));
  if (s.suppressed_bytes > 0)
    return out.add("no leaks but suppressed ones: {} lost and suppressed (listed below), of {} in {} "
                   "still allocated at exit",
                   human_bytes(s.suppressed_bytes), human_bytes(s.live_bytes), count(s.live_blocks, "block"));
  out.add("no leaks: {} in {} still allocated at exit, none of it lost", human_bytes(s.live_bytes),
          count(s.live_blocks, "block"));
}

void add_leaks(Lines& out, const Report& r, const TextOptions& o) {
  const LeakListing listing = list_leaks(r, o);
  Totals hidden_reachable;
  for (const Leak& l : r.leaks)
    if (kind_rank(l.kind) == 3 && !o.show_reachable) hidden_reachable.add(l);
  std::vector<const Leak*> listed;
  listed.reserve(listing.order.size());
  for (std::size_t i : listing.order) listed.push_back(&r.leaks[i]);
  // Leaks and reachable sites are counted apart (`LEAK 1 of 1`, `REACHABLE 1 of 3`): one count
  // over both had `REACHABLE 2 of 4` after the one leak, read as four leaks (a user trial).
  const auto lost = static_cast<std::size_t>(std::count_if(
      listed.begin(), listed.end(), [](const Leak* l) { return kind_rank(l->kind) < 3; }));
  if (r.scan && r.scan->failed) {
    out.blank();
    out.add("leaks unknown: the exit scan failed; {} in {} still allocated at exit",
            human_bytes(r.summary.live_bytes), count(r.summary.live_blocks, "block"));
  } else if (lost == 0) {
    add_no_leaks_line(out, r.summary);
  }
  const std::size_t n = listing.with_stacks;
  for (std::size_t i = 0; i < n; ++i) {
    if (i < lost)
      add_leak(out, *listed[i], i, lost, o);
    else
      add_leak(out, *listed[i], i - lost, listed.size() - lost, o);
  }
  Totals rest;
  for (std::size_t i = n; i < listed.size(); ++i) rest.add(*listed[i]);
  if (n > 0 && (rest.sites || hidden_reachable.sites)) out.blank();
  if (rest.sites)
    out.add("... and {} ({} in {}) — {}", count(rest.sites, "more leak site"),
            human_bytes(rest.bytes), count(rest.blocks, "block"), o.rest_hint);
  if (r.reachable_sites_omitted) {  // the report lists only the largest sites: use the summary
    // (Its block count, where the report has one: a forked child's line had none, where its
    // parent's said "in 4 blocks", a user trial's.)
    out.add("still reachable at exit: {}{} from {} (not listed)",
            human_bytes(r.summary.reachable_bytes),
            r.summary.reachable_blocks
                ? fmt::format(" in {}", count(r.summary.reachable_blocks, "block"))
                : "",
            count(hidden_reachable.sites + r.reachable_sites_omitted, "call site"));
  } else if (hidden_reachable.sites) {
    out.add("still reachable at exit: {} in {} from {} (not listed)",
            human_bytes(hidden_reachable.bytes), count(hidden_reachable.blocks, "block"),
            count(hidden_reachable.sites, "call site"));
  }
}

// ---- suppressions ----

// What the suppressions hid, in total and per pattern (largest first); nothing if they hid nothing.
void add_suppressions(Lines& out, const std::vector<SuppressionHit>& hits) {
  std::vector<const SuppressionHit*> used;
  std::uint64_t bytes = 0, blocks = 0;
  for (const SuppressionHit& h : hits) {
    if (h.blocks == 0 && h.bytes == 0) continue;
    used.push_back(&h);
    add_to(bytes, h.bytes);
    add_to(blocks, h.blocks);
  }
  if (used.empty()) return;
  std::stable_sort(used.begin(), used.end(), [](const SuppressionHit* a, const SuppressionHit* b) {
    return a->bytes > b->bytes;
  });
  out.blank();
  out.add("suppressed: {} in {} by {}", human_bytes(bytes), count(blocks, "block"),
          count(used.size(), "suppression"));
  for (const SuppressionHit* h : used)
    out.add("  {}: {} in {}", clean(h->pattern), human_bytes(h->bytes), count(h->blocks, "block"));
}

// ---- peak ----

// A demangled name without the return type that names of template instances start with:
// "void std::vector<long>::_M_realloc_insert<long const&>(...)" is std::vector's. The name begins
// after the last space outside brackets before its parameter list (not one of an operator's own:
// "operator new", "operator std::string").
std::string_view without_return_type(std::string_view fn) {
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < fn.size(); ++i) {
    const char c = fn[i];
    if (c == '<' || c == '[') ++depth;
    if ((c == '>' || c == ']') && depth > 0) --depth;
    if (c == '(' && depth == 0) break;
    if (c == ' ' && depth == 0) {
      if (fn.substr(0, i).ends_with("operator")) break;
      start = i + 1;
    }
  }
  return fn.substr(start);
}

bool is_standard_library(const Frame& f) {
  const std::string_view fn = without_return_type(f.function ? *f.function : std::string_view());
  const std::string_view module = base_name(f.module);
  return fn.starts_with("std::") || fn.starts_with("__gnu_cxx::") ||
         fn.starts_with("operator new") || (f.file && f.file->starts_with("/usr/include/")) ||
         (!f.function && (module.starts_with("libstdc++") || module.starts_with("libc++")));
}

// A frame of an allocation function itself: the dynamic linker's inline calloc wrapper
// (rtld-malloc.h), strdup. The call site is its caller: a peak row of the threads' TLS read
// `calloc  rtld-malloc.h:44`, like a calloc in the program's own code (a user trial).
bool is_allocation_function(const Frame& f) {
  static constexpr std::string_view kNames[] = {
      "malloc", "calloc",  "realloc", "reallocarray", "aligned_alloc", "memalign", "posix_memalign",
      "valloc", "pvalloc", "strdup",  "strndup",      "__strdup",      "__strndup"};
  return f.function &&
         std::find(std::begin(kNames), std::end(kNames), *f.function) != std::end(kNames);
}

// The frame that names a call site in one line: the first one in the program's own code, not
// in the standard library (C++ allocations all start in std::allocator and friends) nor an
// allocation function's own. A frame
// without a symbol (a stripped program) names it by module and offset: the frames further out
// are other code, and sites told apart there would all read the same.
std::string site_name(const Stack& s) {
  if (s.empty()) return "(no stack recorded)";
  for (const Frame& f : s)
    if (!is_standard_library(f) && !is_allocation_function(f)) return where(f);
  return where(s[0]);
}

// Stacks that differ only further out read the same in one line: they are merged into one row.
struct PeakRow {
  std::string name;
  std::uint64_t bytes = 0, blocks = 0;
};

// part's share of whole, in whole percent rounded to the nearest ("1%" for 1.995% read as less
// than half of it, a user trial's); "<1" for a share that rounds to none but is not nothing.
std::string percent_of(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0 || part == 0) return "0";
  const double share = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  return share < 0.5 ? "<1" : fmt::format("{:.0f}", share);
}

void add_peak(Lines& out, const Report& r, const TextOptions& o) {
  if (r.peak.empty()) return;
  const Summary& s = r.summary;
  std::vector<PeakRow> rows;
  for (const PeakSite& p : r.peak) {
    std::string name = site_name(p.stack);
    auto it = std::find_if(rows.begin(), rows.end(), [&](const PeakRow& row) { return row.name == name; });
    if (it == rows.end()) it = rows.insert(rows.end(), PeakRow{std::move(name)});
    add_to(it->bytes, p.bytes);
    add_to(it->blocks, p.blocks);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const PeakRow& a, const PeakRow& b) { return a.bytes > b.bytes; });
  out.blank();
  out.add("PEAK: {} in {} at {}, held by these call sites:", human_bytes(s.peak_bytes),
          count(s.peak_blocks, "block"), format_ms(s.peak_time_ms));
  std::size_t n = shown(rows.size(), o.max_peak);
  for (std::size_t i = 0; i < n; ++i) {
    out.add("  {:>10} {:>3}%  {:>12}  at {}", human_bytes(rows[i].bytes),
            percent_of(rows[i].bytes, s.peak_bytes), count(rows[i].blocks, "block"), rows[i].name);
  }
  std::uint64_t rest = 0;
  for (std::size_t i = n; i < rows.size(); ++i) rest += rows[i].bytes;
  if (n < rows.size())
    out.add("  ... and {} ({})", count(rows.size() - n, "more call site"), human_bytes(rest));
  // The rows come from the largest stacks kept (peak_sites); a function reached by many call
  // chains, each holding little, can hold much of the peak in stacks that were not kept (a user
  // trial's perl: the rows above added up to 15% of the peak, with nothing to say so).
  std::uint64_t kept = 0;
  for (const PeakSite& p : r.peak) add_to(kept, p.bytes);
  // Past 2%: threads changing a site just after a peak can make the sites add up to a little
  // more or less than the peak (see Peak in state.h), and that is no call site left out.
  if (s.peak_bytes > kept && s.peak_bytes - kept > s.peak_bytes / 50)
    out.add(
        "  ... and {} ({}%) in the call stacks past the {} largest kept (peak_sites=N keeps more)",
        human_bytes(s.peak_bytes - kept), percent_of(s.peak_bytes - kept, s.peak_bytes),
        r.peak.size());
}

}  // namespace

std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(n) / 1024;
  std::size_t unit = 0;
  // Promote before "{:.1f}" would round up to "1024.0".
  for (; unit + 1 < std::size(kUnits) && v >= 1023.95; ++unit) v /= 1024;
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

LeakListing list_leaks(const Report& r, const TextOptions& o) {
  LeakListing listing;
  for (std::size_t i = 0; i < r.leaks.size(); ++i)
    if (kind_rank(r.leaks[i].kind) != 3 || o.show_reachable) listing.order.push_back(i);
  std::stable_sort(listing.order.begin(), listing.order.end(), [&](std::size_t a, std::size_t b) {
    const int ra = kind_rank(r.leaks[a].kind), rb = kind_rank(r.leaks[b].kind);
    return ra != rb ? ra < rb : r.leaks[a].bytes > r.leaks[b].bytes;
  });
  listing.with_stacks = o.errors_only ? 0 : shown(listing.order.size(), o.max_leaks);
  return listing;
}

std::string render_text(const Report& r, const TextOptions& o) {
  Lines out(r.process.pid);
  add_header(out, r);
  if (o.errors_only) {
    add_errors(out, r.errors, r.summary.errors, o);
    return out.take();
  }
  out.blank();
  add_summary(out, r.summary, !(r.scan && r.scan->failed));
  add_scan_warning(out, r.scan, r.scan_failure);
  add_errors(out, r.errors, r.summary.errors, o);
  add_leaks(out, r, o);
  add_suppressions(out, r.suppressions);
  add_peak(out, r, o);
  return out.take();
}

}  // namespace heapledger
