// The text form of the report, for a person at a terminal: a summary, heap errors, leak sites
// with their stacks, what suppressions hid and the call sites at the peak. Every line starts
// with "==PID== ".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tracker/report_model.h"

namespace heapledger {

// Limits on what render_text shows in full; what is cut is counted in one line. 0: no limit.
struct TextOptions {
  std::size_t max_leaks = 25;   // leak sites shown with stacks (also caps heap errors)
  std::size_t max_frames = 12;  // frames per stack
  std::size_t max_peak = 5;     // call sites in the peak section
  bool show_reachable = false;  // list "still reachable" sites instead of one summary line
  bool errors_only = false;     // only the header and the heap errors (on_error=abort's last words)
  // Where the sites and errors past max_leaks are: the JSON report, if one is written.
  std::string rest_hint = "see the JSON report";
};

// The whole report, one '\n'-terminated line at a time. Control characters from the report
// (argv, paths, names) are escaped so that a line is always one line.
std::string render_text(const Report& r, const TextOptions& o = {});

// The leak sites render_text lists (still-reachable ones only with show_reachable), in its order:
// definitely lost first, then indirectly, possibly, still reachable, each largest first. Indexes
// into r.leaks; the first with_stacks are shown with their stacks, the rest counted in one line.
// What the reporter names when the text is the only report.
struct LeakListing {
  std::vector<std::size_t> order;
  std::size_t with_stacks = 0;
};
LeakListing list_leaks(const Report& r, const TextOptions& o);

// 0 -> "0 B", 1023 -> "1023 B", 1536 -> "1.5 KiB", then MiB, GiB, TiB, PiB, EiB.
std::string human_bytes(std::uint64_t n);

}  // namespace heapledger
