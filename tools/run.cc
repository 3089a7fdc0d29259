// `heapledger run -- PROG ARGS...`: finds libheapledger.so, puts it in LD_PRELOAD, turns the
// flags into HEAPLEDGER_OPTIONS, warns when preloading cannot work, and runs the program.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <system_error>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tools/preload_check.h"
#include "tools/spawn.h"
#include "tools/validators.h"
#include "tracker/options.h"

namespace heapledger::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLibraryName = "libheapledger.so";

// Where the library sits relative to the CLI's bin/ directory, in the build and install trees.
constexpr const char* kLibraryDirs[] = {"../lib", "../lib/" HEAPLEDGER_LIBRARY_ARCH,
                                        "../" HEAPLEDGER_INSTALL_LIBDIR};

// Thrown for problems that stop `run` before the program starts (exit status 125).
struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// One of them that is the command line's: said as the parser's usage errors are, naming the
// command and its --help (it said "heapledger: --log: ...": a user trial).
struct UsageError : RunError {
  using RunError::RunError;
};

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// HEAPLEDGER_LIBRARY if set, else the first library found next to the CLI. Absolute, because
// LD_PRELOAD is inherited by whatever the program execs after changing directory.
std::string find_library() {
  std::error_code ec;
  if (std::string env = env_or_empty("HEAPLEDGER_LIBRARY"); !env.empty()) {
    if (!fs::is_regular_file(env, ec))
      throw RunError(fmt::format("HEAPLEDGER_LIBRARY={} is not a file", env));
    // Else the loader says it cannot preload it and the program runs untracked (a user trial; a
    // review's: an executable, a truncated file).
    if (!is_preloadable_library(env))
      throw RunError(
          fmt::format("HEAPLEDGER_LIBRARY={} is not a shared library for this machine", env));
    return fs::absolute(env).lexically_normal();
  }
  fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  std::string tried;
  for (const char* dir : kLibraryDirs) {
    fs::path candidate = (bin / dir / kLibraryName).lexically_normal();
    if (fs::is_regular_file(candidate, ec)) return candidate;
    if (tried.find(candidate.string()) == std::string::npos)  // libdir is often just "lib"
      tried += (tried.empty() ? "" : ", ") + candidate.string();
  }
  throw RunError(fmt::format("cannot find {} (looked for {}); set HEAPLEDGER_LIBRARY to its path",
                             kLibraryName, tried));
}

// The loader splits LD_PRELOAD at spaces and colons, and has no way to quote them.
std::string preload_value(const std::string& library) {
  if (library.find_first_of(" :") != std::string::npos)
    throw RunError(
        fmt::format("the library path {} contains a space or ':', which LD_PRELOAD "
                    "cannot hold; set HEAPLEDGER_LIBRARY to a path without them",
                    library));
  std::string existing = env_or_empty("LD_PRELOAD");
  return existing.empty() ? library : library + ":" + existing;
}

// A path as the program should see it: absolute, since the program may chdir before it exits
// (or before the library reads the file).
// Absolute, so that processes the program starts in other directories write where the user
// meant. Where only the current directory's path has a ':' (which HEAPLEDGER_OPTIONS cannot
// hold), the path goes as given: the library makes it absolute itself as each process starts
// (a user trial: `run --json r.json` was refused there, though the library took it).
std::string absolute_path(const std::string& value) {
  if (value.empty()) throw RunError("an empty path where a file was expected");
  // The current directory was removed: as given, and the library says why at start (the
  // std::filesystem error stopped the run, a user trial's).
  std::error_code gone;
  std::string path = fs::absolute(value, gone).lexically_normal();
  if (gone) return value;
  if (path.find(':') == std::string::npos) return path;
  if (value.find(':') == std::string::npos) {
    fmt::print(stderr,
               "heapledger run: {} is passed as given: the current directory's path has a ':' "
               "(a process that starts in another directory writes there)\n",
               value);
    return value;
  }
  throw RunError(fmt::format("{} contains ':', which HEAPLEDGER_OPTIONS cannot hold", path));
}

// The directory of each report file the program is to write (log and json, from the flags,
// --option or the environment) is made if it is not there. A report whose directory was missing
// went to stderr from every process, the JSON too: a Python parent that waited for its children
// before reading their stderr pipe stalled 60 s on each (a user trial). Where it cannot be made,
// that is said before the program runs, which runs all the same (it may make it itself). Not a
// directory named with %p: each process's own, which the library makes as it writes the report.
void make_report_directories(const std::string& options_text) {
  detail::Options options;
  detail::OptionWarnings warnings;
  detail::parse_options(options_text.c_str(), &options, &warnings);
  std::error_code ec;
  const std::string cwd = fs::current_path(ec).string();
  detail::anchor_paths(&options, ec ? nullptr : cwd.c_str(), &warnings);
  for (const auto& [what, path] : {std::pair{"text", options.log}, {"JSON", options.json}}) {
    const fs::path dir = fs::path(path).parent_path();
    if (path[0] != '/' || dir.string().find('%') != std::string::npos) continue;
    if (fs::is_directory(dir, ec)) {
      // There, but not to be written in (read-only, another user's): said only at exit, where
      // the report went to stderr and a gate over the directory's reports never saw it (a CI
      // user's trial). Not for a device or pipe (/dev/stdout, /dev/null), written in place.
      const fs::file_status target = fs::status(path, ec);
      const bool in_place = fs::exists(target) && !fs::is_regular_file(target);
      if (!in_place && ::access(dir.c_str(), W_OK | X_OK) != 0)
        fmt::print(stderr,
                   "heapledger run: warning: cannot write in the directory {} for the {} report: "
                   "{}; a report that cannot be written goes to stderr\n",
                   dir.string(), what, std::strerror(errno));
      continue;
    }
    // (With an error code: where it cannot be looked at, it threw, and the program was not run.)
    std::error_code made;
    if (fs::create_directories(dir, made) || fs::is_directory(dir, ec)) continue;
    fmt::print(stderr,
               "heapledger run: warning: cannot make the directory {} for the {} report: {}; a "
               "report that cannot be written goes to stderr\n",
               dir.string(), what, made.message());
  }
}

// "stderr" and "none" are not paths, nor are "stdout" and "-": the program's stdout, as the
// library takes them (they were files of those names in the current directory: a user trial).
std::string report_path(const char* flag, const std::string& value) {
  if (value.empty())
    throw UsageError(fmt::format("{}: an empty path (give a file, stdout, stderr or none)", flag));
  if (value == "stdout" || value == "-") return "/dev/stdout";
  if (value == "stderr" || value == "none") return value;
  return absolute_path(value);
}

// The environment's HEAPLEDGER_OPTIONS less the pairs the library would not take, each said here
// once (`heapledger run: warning: HEAPLEDGER_OPTIONS: unknown option 'bogus', ignored`): left
// in, every process of a script or a build said it again (a user trial's make -j2: 56 lines).
// Split into pairs as the library splits them (a good pair beside a bad one with only a space
// between went with it: `leak_exitcode=23 bogus=1`, a CI gate switched off, a review's), and
// each checked after the ones kept, so that the warning says what the library would (`the value
// before it kept`; a suppressions file that cannot be read, too). The program runs on, as the
// library would have.
std::string environment_options() {
  std::string kept;
  detail::split_options(
      env_or_empty("HEAPLEDGER_OPTIONS").c_str(),
      [](void* context, const char* pair, std::size_t len) {
        std::string& kept = *static_cast<std::string*>(context);
        if (len == 0) return;
        const std::string with = (kept.empty() ? "" : kept + ":") + std::string(pair, len);
        detail::Options options;
        detail::OptionWarnings warnings;
        detail::parse_options(with.c_str(), &options, &warnings);
        detail::drop_unreadable_suppressions(&options, &warnings);
        for (int i = 0; i < warnings.count; ++i)
          fmt::print(stderr, "heapledger run: warning: HEAPLEDGER_OPTIONS: {}\n",
                     warnings.lines[i]);
        if (warnings.count == 0) kept = with;
      },
      &kept);
  return kept;
}

// The existing HEAPLEDGER_OPTIONS first, then the --option values, then the flags of their own:
// the library lets later keys win, so `--json b.json` wins over `--option json=a.json` in either
// order (--option won, silently: a user trial).
std::string options_value(const RunArgs& args) {
  std::vector<std::string> parts;
  if (std::string env = environment_options(); !env.empty()) parts.push_back(env);
  for (const std::string& option : args.options) parts.push_back(option);
  if (args.json) parts.push_back("json=" + report_path("--json", *args.json));
  if (args.log) parts.push_back("log=" + report_path("--log", *args.log));
  if (args.leak_exitcode) parts.push_back(fmt::format("leak_exitcode={}", *args.leak_exitcode));
  if (args.error_exitcode) parts.push_back(fmt::format("error_exitcode={}", *args.error_exitcode));
  // The program is exec'd in this process: it keeps this pid.
  if (args.started_only) parts.push_back(fmt::format("exitcode_pid={}", ::getpid()));
  if (args.suppressions) parts.push_back("suppressions=" + absolute_path(*args.suppressions));
  if (args.show_reachable) parts.push_back("show_reachable=1");
  if (args.quiet) parts.push_back("quiet=1");
  if (args.on_error) parts.push_back("on_error=" + *args.on_error);
  return fmt::format("{}", fmt::join(parts, ":"));
}

// --option values: KEY=VALUE with no ':' (the separator of HEAPLEDGER_OPTIONS), a key the
// library has and a value it takes, checked by the library's own parser: an unknown key or a bad
// value was said only when the program started, and it ran all the same (a user trial).
std::string check_key_value(std::string& s) {
  if (s.find('=') == std::string::npos || s.front() == '=') return "expected KEY=VALUE: " + s;
  if (s.find(':') != std::string::npos) return "':' separates options and cannot be in " + s;
  detail::Options options;
  detail::OptionWarnings warnings;
  detail::parse_options(s.c_str(), &options, &warnings);
  detail::drop_unreadable_suppressions(&options, &warnings);
  if (warnings.count == 0) return "";
  std::string why = warnings.lines[0];
  for (std::string_view tail : {", default kept", ", ignored"})
    if (why.ends_with(tail)) why.resize(why.size() - tail.size());
  return why;
}

std::string check_no_colon(std::string& s) {
  return s.find(':') == std::string::npos ? "" : "':' separates options and cannot be in " + s;
}

}  // namespace

CLI::App* add_run(CLI::App& app, RunArgs& args) {
  CLI::App* cmd = app.add_subcommand("run", "Run a program with libheapledger.so preloaded");
  cmd->positionals_at_end();  // from PROG on, every argument is the program's, "-x" included
  cmd->add_option(
         "--json", args.json,
         "Write the JSON report to FILE (%p: the process id), stdout (or -), stderr, or none")
      ->type_name("FILE")
      ->check(CLI::Validator(check_no_colon, ""));
  cmd->add_option("--log", args.log,
                  "Write the text report to FILE, stdout (or -), stderr (default) or none")
      ->type_name("FILE")
      ->check(CLI::Validator(check_no_colon, ""));
  cmd->add_option("--option", args.options,
                  "Any HEAPLEDGER_OPTIONS key, e.g. --option max_frames=32 (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check(CLI::Validator(check_key_value, ""));
  cmd->add_option("--leak-exitcode", args.leak_exitcode,
                  "Exit with N if the program leaked (0-255; 0 keeps its own status)")
      ->type_name("N")
      ->check(exit_status());
  cmd->add_option("--error-exitcode", args.error_exitcode,
                  "Exit with N on heap misuse (double/invalid/mismatched free; 0-255, 0 keeps "
                  "its own status); wins over --leak-exitcode")
      ->type_name("N")
      ->check(exit_status());
  cmd->add_flag("--started-only", args.started_only,
                "--leak-exitcode and --error-exitcode apply to the started program only, not to "
                "the processes it starts (which keep their own status)");
  cmd->add_option("--suppressions", args.suppressions,
                  "Hide leaks matching the leak:PATTERN lines of FILE (LeakSanitizer format)")
      ->type_name("FILE")
      ->check(CLI::ExistingFile.description(""))
      ->check(CLI::Validator(check_no_colon, ""));
  cmd->add_flag("--show-reachable", args.show_reachable,
                "List still-reachable blocks in the text report instead of only counting them");
  cmd->add_flag("--quiet", args.quiet,
                "No text report from a process with nothing to fix (no leaks, no heap errors), "
                "as LeakSanitizer: for programs whose children's stderr is read");
  cmd->add_option("--on-error", args.on_error,
                  "On heap misuse: report (at exit, and run on; the default) or abort (print "
                  "the error at once, then abort)")
      ->type_name("report|abort")
      ->check(CLI::IsMember({"report", "abort"}).description(""));
  cmd->add_option("command", args.command, "The program to run and its arguments")
      ->required()
      ->type_name("PROG [ARGS...]");
  cmd->footer(
      "Every argument from PROG on is passed to the program (-- before PROG is optional).\n"
      "Exit status: the program's own (a signal that killed it is raised again); when the\n"
      "program did not run: 125 heapledger failed, 126 not executable, 127 not found.\n"
      "Environment: HEAPLEDGER_LIBRARY overrides the library's path; HEAPLEDGER_OPTIONS is\n"
      "kept and the flags are added after it, so they win (an entry the library would not\n"
      "take is said once here and dropped).");
  return cmd;
}

int run_command(const RunArgs& args) {
  const std::string& name = args.command.front();
  std::optional<std::string> program = find_program(name);
  if (!program) {
    fmt::print(stderr, "heapledger run: {}: command not found\n", name);
    return kNotFound;
  }
  try {
    ::setenv("LD_PRELOAD", preload_value(find_library()).c_str(), 1);
    // Unset when nothing is left: the environment's, all dropped, went on as they were.
    if (std::string options = options_value(args); !options.empty()) {
      ::setenv("HEAPLEDGER_OPTIONS", options.c_str(), 1);
      make_report_directories(options);
    } else {
      ::unsetenv("HEAPLEDGER_OPTIONS");
    }
  } catch (const UsageError& e) {
    fmt::print(stderr, "heapledger run: {} (see heapledger run --help)\n", e.what());
    return kToolFailed;
  } catch (const std::exception& e) {
    fmt::print(stderr, "heapledger run: {}\n", e.what());
    return kToolFailed;
  }
  if (std::optional<std::string> why = preload_obstacle(*program))
    fmt::print(stderr,
               "heapledger run: {}: the library cannot be preloaded and no report will be "
               "written\n",
               *why);
  return exec_program(*program, args.command);
}

}  // namespace heapledger::cli
