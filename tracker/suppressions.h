// Leak suppressions in LeakSanitizer's format, so existing LSan files work unchanged:
// one `leak:PATTERN` per line, `#` comments, `*` wildcards, `^`/`$` anchors (otherwise the pattern
// may match anywhere), matched against the function, file and module of every frame.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tracker/report_model.h"

namespace heapledger {

// LSan's template match: `*` matches any run of characters; without a leading `^` or trailing
// `$` the pattern may start or end anywhere in `text`.
bool template_match(std::string_view pattern, std::string_view text);

class Suppressions {
 public:
  // The list heapledger always applies: runtime one-offs that are not the program's leaks.
  static Suppressions builtin();

  // Parses LSan-format text; each problem becomes a warning naming `source` and the line.
  void parse(std::string_view text, std::string_view source, std::vector<std::string>* warnings);
  // Reads a file; an unreadable file is one warning.
  void load(const std::string& path, std::vector<std::string>* warnings);

  // Which pattern is the first to match a frame of these symbolized frames: its index, or size()
  // if none does.
  std::size_t first_match(const Stack& frames) const;

  // Which pattern hides a leak by its stack, or by its holder's (first_match's answer for it;
  // size() for none), for leaks whose stacks are not yet symbolized, or not yet copied out: the
  // reporter answers it frame by frame, once for each distinct frame.
  using FirstMatch = std::function<std::size_t(const Leak&, bool holder)>;

  // Removes matching definite, indirect and possible leaks from the report, moves their bytes to
  // summary.suppressed_bytes and records which pattern hid how much. An indirect leak whose
  // holder matches goes with it (LeakSanitizer: what only a suppressed leak holds is not leaked).
  // The leaks' stacks symbolized, or first_match_of to say for each.
  void apply(Report& r) const;
  void apply(Report& r, const FirstMatch& first_match_of) const;

  std::size_t size() const { return patterns_.size(); }

 private:
  struct Pattern {
    std::string text;
    std::string origin;  // "file:line" or "built-in"
  };
  std::vector<Pattern> patterns_;
};

}  // namespace heapledger
