// HEAPLEDGER_OPTIONS: colon-separated key=value pairs, parsed without touching the heap (it runs
// inside the allocator's start-up). Bad input never stops the program: it yields warnings.
#pragma once

#include <cstddef>

namespace heapledger::detail {

constexpr std::size_t kMaxPath = 4096;  // PATH_MAX
constexpr int kMaxFramesLimit = 256;

struct Options {
#define HL_OPTION_Path(name, def) char name[kMaxPath] = def;
#define HL_OPTION_Choice(name, def) char name[16] = def;
#define HL_OPTION_Bool(name, def) bool name = def;
#define HL_OPTION_Int(name, def) int name = def;
#define HL_OPTION(kind, name, def, help) HL_OPTION_##kind(name, def)
#include "tracker/options.inc"
#undef HL_OPTION
#undef HL_OPTION_Path
#undef HL_OPTION_Choice
#undef HL_OPTION_Bool
#undef HL_OPTION_Int
};

// Warnings from parsing, kept in fixed storage until there is a logger to print them.
struct OptionWarnings {
  static constexpr int kMax = 8;
  char lines[kMax][256] = {};
  int count = 0;
};

// Parses `text` (may be null) over the defaults in *out; problems go to *warnings.
void parse_options(const char* text, Options* out, OptionWarnings* warnings);

// What `text` sets track to (its last valid track=, as parse_options reads it; true if none): for
// the allocations made before the options are parsed. No allocation, little stack.
bool tracking_asked(const char* text);

// Calls f(context, pair, length) for each key=value pair of text, split as parse_options splits
// it (at ':', or a separator before another key: `log=none leak_exitcode=23`). For the CLI, which
// checks the environment's options one pair at a time.
void split_options(const char* text, void (*f)(void* context, const char* pair, std::size_t len),
                   void* context);

// Makes the relative paths among the options (log, json, suppressions) absolute against dir, the
// working directory when the program started: a program that changes directory before it exits
// must not move its report, or lose its suppressions (it did: `json=r.json` was written to /r.json
// after a chdir("/")). A path that would not fit stays as it was, with a warning.
void anchor_paths(Options* o, const char* dir, OptionWarnings* warnings);

// With track=0 nothing is recorded and no report is written: a warning for each report asked for
// all the same (json, or log other than stderr and none), which used to go without a word.
void warn_reports_unwritten(const Options& o, OptionWarnings* warnings);

// A suppressions file that cannot be opened for reading (missing, a directory, no permission) is
// dropped with a warning: it was said only at exit, and only when there were leaks for it to
// match, so a mistyped path passed a clean run without a word. Looked at once, as the process
// starts (after anchor_paths) and as `heapledger run` checks the options it passes on.
void drop_unreadable_suppressions(Options* o, OptionWarnings* warnings);

// Writes one "  key  default  help" line per option into buf, as snprintf does: returns the
// length the whole needs, and writes what fits (buf may be null with size 0). `heapledger
// options` prints it.
std::size_t describe_options(char* buf, std::size_t size);

}  // namespace heapledger::detail
