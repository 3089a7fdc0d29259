// heapledger: runs programs under the preloaded library (`run`), renders JSON reports (`report`)
// and lists the library's options (`options`). Parses the command line and dispatches; the
// commands live in run.cc, render.cc and options.cc.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <string_view>

#include "tools/commands.h"

namespace {

using heapledger::cli::ReportArgs;
using heapledger::cli::RunArgs;

constexpr int kUsageError = 2;
// The commands, named in the messages of a command line without one.
constexpr const char* kEveryCommand = "'run', 'report' and 'options'";
constexpr const char* kAnyCommand = "'run', 'report' or 'options'";
// `run`'s own failures, a wrong flag included, exit 125 (as env, timeout and nice do): 2 could be
// the program's own status (a user trial: a wrapper could not tell them apart).
constexpr int kRunUsageError = 125;

// The first argument after the command's name that looks like a flag and is none of the
// command's, up to the first word that is not a flag (the program, for `run`) or `--`; null if
// none. The value of a flag that takes one is skipped.
const char* first_unknown_flag(const CLI::App& cmd, int argc, char** argv) {
  int i = 1;
  while (i < argc && cmd.get_name() != argv[i]) ++i;
  for (++i; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--" || arg.size() < 2 || arg[0] != '-') return nullptr;
    const std::string name(arg.substr(0, arg.find('=')));
    const CLI::Option* option = cmd.get_option_no_throw(name);
    if (!option) return name == "-h" || name == "--help" ? nullptr : argv[i];
    if (option->get_expected_min() > 0 && name.size() == arg.size()) ++i;
  }
  return nullptr;
}

// CLI11 prints the help or the version; a usage error is one line of ours (CLI11's own were two,
// without the tool's name: "command is required" / "Run with --help for more information.") and
// exits 2, or 125 for `run`. An unknown flag of a command is named, with the command, instead of
// CLI11's list of every argument it did not expect ("-- --bogus").
int usage_error(CLI::App& app, const CLI::ParseError& e, std::initializer_list<CLI::App*> commands,
                int status, int argc, char** argv) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
  // `run -weird` or `run --version`: CLI11 took the flag for no program, and said only that one
  // is required.
  if (dynamic_cast<const CLI::RequiredError*>(&e)) {
    for (CLI::App* cmd : commands) {
      if (!cmd->parsed()) continue;
      if (const char* flag = first_unknown_flag(*cmd, argc, argv)) {
        std::fprintf(stderr, "heapledger %s: unknown option '%s' (see heapledger %s --help)\n",
                     cmd->get_name().c_str(), flag, cmd->get_name().c_str());
        return status;
      }
    }
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    for (CLI::App* cmd : commands) {
      if (!cmd->parsed()) continue;
      for (const std::string& arg : cmd->remaining()) {
        if (arg.size() < 2 || arg[0] != '-' || arg == "--") continue;
        std::fprintf(stderr, "heapledger %s: unknown option '%s' (see heapledger %s --help)\n",
                     cmd->get_name().c_str(), arg.c_str(), cmd->get_name().c_str());
        return status;
      }
    }
  }
  std::string who = "heapledger";
  for (CLI::App* cmd : commands)
    if (cmd->parsed()) who += " " + cmd->get_name();
  if (dynamic_cast<const CLI::RequiredError*>(&e) &&
      std::string_view(e.what()) == "A subcommand is required")
    std::fprintf(stderr, "heapledger: a command is required: %s (see --help)\n", kAnyCommand);
  else
    std::fprintf(stderr, "%s: %s (see %s --help)\n", who.c_str(), e.what(), who.c_str());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heapledger " HEAPLEDGER_VERSION
               ": finds leaks, peak usage and heap misuse in "
               "Linux programs by preloading libheapledger.so.",
               "heapledger"};
  app.set_version_flag("--version", "heapledger " HEAPLEDGER_VERSION);
  app.require_subcommand(1);
  RunArgs run_args;
  ReportArgs report_args;
  CLI::App* run = heapledger::cli::add_run(app, run_args);
  CLI::App* report = heapledger::cli::add_report(app, report_args);
  CLI::App* options = heapledger::cli::add_options(app);
  // A flag before any command: CLI11 would only say that a command is required.
  if (argc > 1 && argv[1][0] == '-' && !app.get_option_no_throw(argv[1]) &&
      std::string_view(argv[1]) != "-h" && std::string_view(argv[1]) != "--help") {
    std::fprintf(stderr, "heapledger: unknown option '%s'; the commands are %s (see --help)\n",
                 argv[1], kEveryCommand);
    return kUsageError;
  }
  // A word that is not a command: CLI11 would say only that a command is required.
  const auto is_command = [&](const char* word) {
    for (CLI::App* cmd : {run, report, options})
      if (cmd->check_name(word)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr, "heapledger: unknown command '%s'; the commands are %s (see --help)\n",
                 argv[1], kEveryCommand);
    return kUsageError;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const bool for_run = argc > 1 && std::string_view(argv[1]) == "run";
    return usage_error(app, e, {run, report, options}, for_run ? kRunUsageError : kUsageError, argc,
                       argv);
  }
  if (run->parsed()) return heapledger::cli::run_command(run_args);
  if (report->parsed()) return heapledger::cli::report_command(report_args);
  if (options->parsed()) return heapledger::cli::options_command();
  return kUsageError;
}
