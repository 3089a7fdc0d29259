// Suppressions; see suppressions.h.
#include "tracker/suppressions.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace heapledger {
namespace {

// Glob match of `p` (only `*` is special) against all of `t`, iterative with backtracking.
bool glob(std::string_view p, std::string_view t) {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi, ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_leak(const std::string& kind) {
  return kind == "definite" || kind == "indirect" || kind == "possible" || kind == "unknown";
}

}  // namespace

bool template_match(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return false;
  bool start = pattern.front() == '^';
  if (start) pattern.remove_prefix(1);
  bool end = !pattern.empty() && pattern.back() == '$';
  if (end) pattern.remove_suffix(1);
  std::string full;
  if (!start) full += '*';
  full += pattern;
  if (!end) full += '*';
  return glob(full, text);
}

Suppressions Suppressions::builtin() {
  // Thread-local storage the dynamic linker allocates per thread and frees only when the thread
  // is reused; and glibc's per-thread buffers released at thread exit after the report. Names of
  // the symbol table: the reporter matches these against it alone (no file, no inlined frames).
  static constexpr std::string_view kBuiltin =
      "leak:_dl_allocate_tls\n"
      "leak:__tls_get_addr\n"
      "leak:_dl_resize_dtv\n";
  Suppressions s;
  s.parse(kBuiltin, "built-in", nullptr);
  for (Pattern& p : s.patterns_) p.origin = "built-in";
  return s;
}

void Suppressions::parse(std::string_view text, std::string_view source,
                         std::vector<std::string>* warnings) {
  std::size_t line_no = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    std::size_t colon = line.find(':');
    std::string_view type = colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
    std::string_view pattern = colon == std::string_view::npos ? std::string_view{} : trim(line.substr(colon + 1));
    if (type != "leak" || pattern.empty()) {
      if (warnings)
        warnings->push_back(fmt::format("{}:{}: ignoring '{}': expected leak:PATTERN", source, line_no, line));
      continue;
    }
    patterns_.push_back(Pattern{std::string(pattern), fmt::format("{}:{}", source, line_no)});
  }
}

void Suppressions::load(const std::string& path, std::vector<std::string>* warnings) {
  errno = 0;
  std::ifstream in(path);
  if (!in) {  // why, as open(2) said (an unreadable file was refused without a word why)
    const int error = errno;
    if (warnings)
      warnings->push_back(fmt::format("cannot read suppressions file {}{}{}", path,
                                      error ? ": " : "", error ? std::strerror(error) : ""));
    return;
  }
  std::stringstream text;
  text << in.rdbuf();
  parse(text.str(), path, warnings);
}

std::size_t Suppressions::first_match(const Stack& frames) const {
  for (std::size_t i = 0; i < patterns_.size(); ++i)
    for (const Frame& f : frames)
      if ((f.function && template_match(patterns_[i].text, *f.function)) ||
          (f.file && template_match(patterns_[i].text, *f.file)) ||
          template_match(patterns_[i].text, f.module))
        return i;
  return patterns_.size();
}

void Suppressions::apply(Report& r) const {
  apply(r, [this](const Leak& l, bool holder) { return first_match(holder ? l.holder : l.stack); });
}

void Suppressions::apply(Report& r, const FirstMatch& first_match_of) const {
  if (patterns_.empty()) return;
  auto match = [&](const Leak& l, bool holder) -> const Pattern* {
    const std::size_t i = first_match_of(l, holder);
    return i < patterns_.size() ? &patterns_[i] : nullptr;
  };
  std::map<const Pattern*, SuppressionHit> hits;
  std::vector<Leak> kept;
  for (Leak& l : r.leaks) {
    const Pattern* p = is_leak(l.kind) ? match(l, false) : nullptr;
    if (!p && l.kind == "indirect") p = match(l, true);  // (no holder: no frame, no match)
    if (!p) {
      kept.push_back(std::move(l));
      continue;
    }
    SuppressionHit& h = hits[p];
    h.pattern = p->text;
    h.blocks += l.blocks;
    h.bytes += l.bytes;
    r.summary.suppressed_bytes += l.bytes;
    r.summary.suppressed_blocks += l.blocks;
    if (l.kind == "possible") {
      r.summary.possible_bytes -= l.bytes;
      r.summary.possible_blocks -= l.blocks;
    } else {
      r.summary.leaked_bytes -= l.bytes;
      r.summary.leaked_blocks -= l.blocks;
    }
  }
  r.leaks = std::move(kept);
  for (auto& [p, h] : hits) r.suppressions.push_back(h);
}

}  // namespace heapledger
