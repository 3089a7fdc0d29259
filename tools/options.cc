// `heapledger options`: the library's HEAPLEDGER_OPTIONS keys, each with its default and one line
// on what it does, from the table the library itself parses (tracker/options.inc), so that the
// listing cannot drift from what the library takes. The README's "Options" tells each in full;
// a user looking for a key and its default had to find it there in paragraphs of prose (a user
// trial's).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tracker/options.h"

namespace heapledger::cli {
namespace {
constexpr int kCannotWrite = 2;  // as `heapledger report` fails when stdout takes no more
}  // namespace

CLI::App* add_options(CLI::App& app) {
  return app.add_subcommand("options",
                            "List the library's options (HEAPLEDGER_OPTIONS keys), their defaults "
                            "and what they do");
}

int options_command() {
  std::string table(detail::describe_options(nullptr, 0) + 1, '\0');
  table.resize(detail::describe_options(table.data(), table.size()));
  const std::string text = fmt::format(
      "HEAPLEDGER_OPTIONS=key=value:key=value... (or heapledger run --option key=value)\n"
      "  {:<16} {:<7} {}\n{}",
      "key", "default", "meaning", table);
  // As `heapledger report`: a listing that could not be written (a full disk, a closed stdout)
  // says so and fails.
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    fmt::print(stderr, "heapledger options: cannot write the list: {}\n", std::strerror(errno));
    return kCannotWrite;
  }
  return 0;
}

}  // namespace heapledger::cli
