// Parser for HEAPLEDGER_OPTIONS over the table in options.inc. Uses only stack buffers (and
// snprintf with no positional or wide arguments, which allocates nothing), because it runs while
// the allocator starts up. The CLI compiles it too, to check `run --option` as the library will.
#include "tracker/options.h"

#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include <fcntl.h>
#include <sys/stat.h>

#include "shim/kernel_call.h"

namespace heapledger::detail {
namespace {

__attribute__((format(printf, 2, 3))) void warn(OptionWarnings* w, const char* fmt, ...) {
  if (w->count >= OptionWarnings::kMax) return;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(w->lines[w->count++], sizeof w->lines[0], fmt, args);
  va_end(args);
}

bool parse_int(const char* s, int lo, int hi, int* out) {
  if (!*s) return false;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

bool parse_bool(const char* s, bool* out) {
  if (!std::strcmp(s, "1") || !std::strcmp(s, "true") || !std::strcmp(s, "yes")) return *out = true;
  if (!std::strcmp(s, "0") || !std::strcmp(s, "false") || !std::strcmp(s, "no")) return !(*out = false);
  return false;
}

// Empty: no JSON report, or no suppressions; the text report needs a place (stderr, none, a path).
// json=none is no JSON report too, as log=none is no text (it wrote a file named "none"), and
// suppressions=none none (`heapledger options` shows an empty default as none). A
// report to stdout or - goes to the program's stdout, as /dev/stdout does (LeakSanitizer's
// log_path=stdout; - as `heapledger report -` reads standard input): both wrote a file of that
// name in the current directory (a user trial).
bool set_path(const char* name, char* dst, const char* value) {
  if (std::strlen(value) >= kMaxPath || (!*value && !std::strcmp(name, "log"))) return false;
  const bool report = !std::strcmp(name, "log") || !std::strcmp(name, "json");
  if (std::strcmp(name, "log") && !std::strcmp(value, "none")) value = "";
  if (report && (!std::strcmp(value, "stdout") || !std::strcmp(value, "-"))) value = "/dev/stdout";
  std::strcpy(dst, value);
  return true;
}

// The values a choice option accepts.
struct Choices {
  const char* option;
  const char* accepted[4];
};
constexpr Choices kChoices[] = {
    {"on_error", {"report", "abort"}},
    {"unwind", {"fast", "libunwind", "verify"}},
};

bool set_choice(const char* name, char* dst, std::size_t cap, const char* value) {
  for (const Choices& c : kChoices) {
    if (std::strcmp(name, c.option)) continue;
    for (const char* v : c.accepted)
      if (v && !std::strcmp(value, v) && std::strlen(value) < cap) return std::strcpy(dst, value), true;
    return false;
  }
  return false;
}

// "report or abort", "fast, libunwind or verify".
void describe_choices(const char* name, char* out, std::size_t size) {
  for (const Choices& c : kChoices) {
    if (std::strcmp(name, c.option)) continue;
    std::size_t n = 0;
    while (n < 4 && c.accepted[n]) ++n;
    std::size_t used = 0;
    for (std::size_t i = 0; i < n && used < size; ++i) {
      const char* sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
      const int w = std::snprintf(out + used, size - used, "%s%s", sep, c.accepted[i]);
      if (w < 0) break;
      used += static_cast<std::size_t>(w);
    }
  }
}

constexpr int kNoLimit = 1 << 30;

// Range of each integer option; others accept any value of their kind.
void int_range(const char* name, int* lo, int* hi) {
  *lo = 0;
  *hi = kNoLimit;
  if (!std::strcmp(name, "max_frames")) *lo = 1, *hi = kMaxFramesLimit;
  if (!std::strcmp(name, "leak_exitcode") || !std::strcmp(name, "error_exitcode")) *hi = 255;
  if (!std::strcmp(name, "quarantine_mb")) *hi = 1 << 16;
}

// What a known option accepts, for the warning about a value it does not take (`bad value '300'
// for option 'leak_exitcode'` did not say what would do: a user trial).
void describe_accepted(const char* key, char* out, std::size_t size) {
  int lo, hi;
  *out = 0;
#define HL_OPTION_Path(name)                                                       \
  if (!std::strcmp(key, #name))                                                    \
    return (void)std::snprintf(out, size, "a path of under %zu bytes%s", kMaxPath, \
                               std::strcmp(key, "log") ? "" : ", not empty");
#define HL_OPTION_Choice(name) \
  if (!std::strcmp(key, #name)) return describe_choices(#name, out, size);
#define HL_OPTION_Bool(name)    \
  if (!std::strcmp(key, #name)) \
    return (void)std::snprintf(out, size, "1, true or yes; 0, false or no");
#define HL_OPTION_Int(name)                                                                      \
  if (!std::strcmp(key, #name)) {                                                                \
    int_range(#name, &lo, &hi);                                                                  \
    if (hi == kNoLimit) return (void)std::snprintf(out, size, "a whole number, %d or more", lo); \
    return (void)std::snprintf(out, size, "a whole number from %d to %d", lo, hi);               \
  }
#define HL_OPTION(kind, name, def, help) HL_OPTION_##kind(name)
#include "tracker/options.inc"
#undef HL_OPTION
#undef HL_OPTION_Path
#undef HL_OPTION_Choice
#undef HL_OPTION_Bool
#undef HL_OPTION_Int
}

bool apply(const char* key, const char* value, Options* o, bool* known) {
  int lo, hi;
  *known = true;
#define HL_OPTION_Path(name) \
  if (!std::strcmp(key, #name)) return set_path(#name, o->name, value);
#define HL_OPTION_Choice(name) \
  if (!std::strcmp(key, #name)) return set_choice(#name, o->name, sizeof o->name, value);
#define HL_OPTION_Bool(name) if (!std::strcmp(key, #name)) return parse_bool(value, &o->name);
#define HL_OPTION_Int(name) \
  if (!std::strcmp(key, #name)) return int_range(#name, &lo, &hi), parse_int(value, lo, hi, &o->name);
#define HL_OPTION(kind, name, def, help) HL_OPTION_##kind(name)
#include "tracker/options.inc"
#undef HL_OPTION
#undef HL_OPTION_Path
#undef HL_OPTION_Choice
#undef HL_OPTION_Bool
#undef HL_OPTION_Int
  *known = false;
  return false;
}

// Whether s starts with a word of letters, digits and '_' (not a digit first) and '=': a key,
// ours or not (LeakSanitizer's `detect_leaks=1` after a space went into the path before it,
// silently: now it is an unknown option, said).
bool starts_with_key(const char* s) {
  if (!std::isalpha(static_cast<unsigned char>(*s)) && *s != '_') return false;
  while (std::isalnum(static_cast<unsigned char>(*s)) || *s == '_') ++s;
  return *s == '=';
}

// Between pairs besides ':' (see pair_end).
bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ','; }

// Where the pair that starts at p ends: at a ':' (ours), or, as LeakSanitizer also takes them, at
// a space, tab, newline or comma that a "key=" (any word), a colon or the end follows
// (`log=none leak_exitcode=23` set a log file named "none leak_exitcode=23" and no exit status, a
// CI user's trial). Elsewhere such a character is part of the value (a path with a space or a
// comma).
const char* pair_end(const char* p) {
  for (; *p && *p != ':'; ++p) {
    if (!is_separator(*p)) continue;
    const char* next = p;
    while (is_separator(*next)) ++next;
    if (starts_with_key(next) || !*next || *next == ':') return p;
  }
  return p;
}

// Calls f(start, length) for each pair of text, as far as pair_end takes it (empty pairs too).
template <class F>
void each_pair(const char* text, F&& f) {
  for (const char* p = text; *p;) {
    while (is_separator(*p)) ++p;
    if (!*p) break;
    const char* end = pair_end(p);
    f(p, static_cast<std::size_t>(end - p));
    p = *end == ':' ? end + 1 : end;
  }
}

}  // namespace

void parse_options(const char* text, Options* out, OptionWarnings* warnings) {
  if (!text) return;
  char pair[kMaxPath + 64];
  // The keys set so far: a bad value after a good one keeps the good one, which the warning
  // says (it said "default kept" of `leak_exitcode=23:leak_exitcode=abc`, which exits 23: a
  // user trial).
  constexpr int kKeysKept = 32;
  char set[kKeysKept][48];
  int n_set = 0;
  const auto was_set = [&](const char* key) {
    for (int i = 0; i < n_set; ++i)
      if (!std::strcmp(set[i], key)) return true;
    return false;
  };
  each_pair(text, [&](const char* p, std::size_t len) {
    if (len >= sizeof pair) {
      warn(warnings, "option '%.40s...' is too long, ignored", p);
    } else if (len > 0) {
      std::memcpy(pair, p, len);
      pair[len] = 0;
      char* eq = std::strchr(pair, '=');
      bool known = false;
      if (!eq) {
        warn(warnings, "option '%.200s' has no '=value', ignored", pair);
      } else {
        *eq = 0;
        const bool applied = apply(pair, eq + 1, out, &known);
        if (applied && n_set < kKeysKept && std::strlen(pair) < sizeof set[0] && !was_set(pair))
          std::strcpy(set[n_set++], pair);
        if (!applied && known) {
          char accepted[96];
          describe_accepted(pair, accepted, sizeof accepted);
          warn(warnings, "bad value '%.60s' for option '%.40s' (%s), %s kept", eq + 1, pair,
               accepted, was_set(pair) ? "the value before it" : "default");
        } else if (!known) {
          warn(warnings, "unknown option '%.200s', ignored", pair);
        }
      }
    }
  });
}

bool tracking_asked(const char* text) {
  bool track = true;
  constexpr char kKey[] = "track=";
  constexpr std::size_t kKeyLen = sizeof kKey - 1;
  if (text)
    each_pair(text, [&](const char* p, std::size_t len) {
      char value[8];
      if (len <= kKeyLen || len - kKeyLen >= sizeof value || std::strncmp(p, kKey, kKeyLen) != 0)
        return;
      std::memcpy(value, p + kKeyLen, len - kKeyLen);
      value[len - kKeyLen] = 0;
      parse_bool(value, &track);  // a bad value keeps the one before, as parse_options does
    });
  return track;
}

void split_options(const char* text, void (*f)(void* context, const char* pair, std::size_t len),
                   void* context) {
  if (text) each_pair(text, [&](const char* p, std::size_t len) { f(context, p, len); });
}

void warn_reports_unwritten(const Options& o, OptionWarnings* warnings) {
  if (o.track) return;
  if (o.json[0] && std::strcmp(o.json, "none") != 0)
    warn(warnings, "json=%.150s: no report with track=0 (pools only), so none is written", o.json);
  if (std::strcmp(o.log, "stderr") != 0 && std::strcmp(o.log, "none") != 0)
    warn(warnings, "log=%.150s: no report with track=0 (pools only), so none is written", o.log);
  // A CI job's gate that never closes: nothing is found, so the status is always the program's
  // (it passed, with no word why: a user trial).
  if (o.leak_exitcode)
    warn(warnings,
         "leak_exitcode=%d: no leaks are looked for with track=0 (pools only), so the exit status "
         "stays the program's",
         o.leak_exitcode);
  if (o.error_exitcode)
    warn(warnings,
         "error_exitcode=%d: no heap misuse is looked for with track=0 (pools only), so the exit "
         "status stays the program's",
         o.error_exitcode);
}

void drop_unreadable_suppressions(Options* o, OptionWarnings* warnings) {
  if (!o->suppressions[0]) return;
  // The system calls themselves: libc's are the program's to interpose, and this runs while
  // the allocator starts up. Not opened: a named pipe's writer would take that open for the
  // exit's read, and die of EPIPE at its close, and the exit's read then wait for good (a
  // review's).
  const auto path = reinterpret_cast<long>(o->suppressions);
  struct stat st;
  long error = os::kernel_call(SYS_newfstatat, AT_FDCWD, path, reinterpret_cast<long>(&st), 0);
  if (error == 0 && S_ISDIR(st.st_mode)) error = -EISDIR;
  if (error == 0) error = os::kernel_call(SYS_faccessat, AT_FDCWD, path, R_OK);
  if (error == 0) return;
  // strerrordesc_np: the English text, no locale, no allocation.
  warn(warnings, "suppressions=%.150s: cannot read it (%s), ignored", o->suppressions,
       strerrordesc_np(static_cast<int>(-error)));
  o->suppressions[0] = 0;
}

namespace {
// A path to make absolute: not empty, not absolute, not stderr or none.
bool relative(const char* path) {
  return path[0] && path[0] != '/' && std::strcmp(path, "stderr") != 0 &&
         std::strcmp(path, "none") != 0;
}

void anchor_to(Options* o, const char* dir, OptionWarnings* warnings) {
  if (!dir || dir[0] != '/') {
    // Started in a directory that is gone (removed): its path cannot be had, and a relative path
    // goes wherever the program is when it exits (a user trial: silently).
    for (const char* path : {o->log, o->json})
      if (relative(path))
        warn(warnings,
             "the current directory has no path (removed?): '%.120s' is taken from the directory "
             "the program is in when it exits",
             path);
    return;
  }
  // In front of a report path the directory is spelled as the path option would spell it: a % in
  // it doubled (else %p in it became the pid). The suppressions path is used as it is.
  auto anchor = [&](const char* name, char* path, bool spelled) {
    if (!relative(path)) return;
    char prefix[kMaxPath];
    std::size_t n = 0;
    for (const char* c = dir; *c && n + 2 < sizeof prefix; ++c) {
      if (*c == '%' && spelled) prefix[n++] = '%';
      prefix[n++] = *c;
    }
    if (prefix[n - 1] != '/') prefix[n++] = '/';  // the root ends in one already
    const std::size_t len = std::strlen(path);
    if (n + len >= kMaxPath) {
      warn(warnings,
           "%s path '%.150s' is too long to make absolute; it is taken from the directory at exit",
           name, path);
      return;
    }
    std::memmove(path + n, path, len + 1);
    std::memcpy(path, prefix, n);
  };
  anchor("log", o->log, true);
  anchor("json", o->json, true);
  anchor("suppressions", o->suppressions, false);
}
}  // namespace

void anchor_paths(Options* o, const char* dir, OptionWarnings* warnings) {
  anchor_to(o, dir, warnings);
  // Both reports into one file: the second written replaced the first, with no word said.
  if (o->json[0] && std::strcmp(o->log, "stderr") != 0 && !std::strcmp(o->log, o->json)) {
    warn(warnings, "log and json name the same file '%.180s': the text report goes to stderr",
         o->log);
    std::strcpy(o->log, "stderr");
  }
}

std::size_t describe_options(char* buf, std::size_t size) {
  std::size_t used = 0;
  // def as written in options.inc: a quoted string, true or false, or a number; shown as it is
  // given in HEAPLEDGER_OPTIONS (none for an empty path).
  auto add = [&](const char* name, const char* def, const char* help) {
    std::size_t len = std::strlen(def);
    if (len >= 2 && def[0] == '"') ++def, len -= 2;
    if (len == 0) def = "none", len = 4;
    if (!std::strcmp(def, "true")) def = "1", len = 1;
    if (!std::strcmp(def, "false")) def = "0", len = 1;
    const bool room = used < size;  // else only counted: (nullptr, 0) asks for the length
    int n = std::snprintf(room ? buf + used : nullptr, room ? size - used : 0,
                          "  %-16s %-7.*s %s\n", name, static_cast<int>(len), def, help);
    if (n > 0) used += static_cast<std::size_t>(n);
  };
#define HL_STR(x) #x
#define HL_OPTION(kind, name, def, help) add(#name, HL_STR(def), help);
#include "tracker/options.inc"
#undef HL_OPTION
#undef HL_STR
  return used;
}

}  // namespace heapledger::detail
