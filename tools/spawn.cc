// Runs the program under test in the CLI's place (exec, as env and nice do): its process id,
// signals and exit status are the program's own, with nothing in between to relay them.
#include "tools/spawn.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "tools/commands.h"
#include "tools/preload_check.h"

namespace heapledger::cli {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// $PATH, or the default execvp uses when it is unset.
std::string search_path() {
  if (const char* path = std::getenv("PATH")) return path;
  std::string path(::confstr(_CS_PATH, nullptr, 0), '\0');
  ::confstr(_CS_PATH, path.data(), path.size());
  path.resize(std::strlen(path.c_str()));
  return path;
}

}  // namespace

std::optional<std::string> find_program(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) return name;
  const std::string path = search_path();
  std::string_view dirs = path;
  while (true) {
    std::size_t colon = std::min(dirs.find(':'), dirs.size());
    std::string_view dir = dirs.substr(0, colon);  // an empty entry means "."
    std::string candidate = dir.empty() ? name : fmt::format("{}/{}", dir, name);
    if (is_executable_file(candidate)) return dir.empty() ? "./" + name : candidate;
    if (colon == dirs.size()) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

int exec_program(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  // An ELF file the kernel will not run (another architecture, a 32-bit program on a kernel
  // without 32-bit support) is no script for /bin/sh, where execvp takes it (dash printed
  // 'Syntax error: "(" unexpected', and a report of its own: a user trial's): 126, as bash says.
  const std::optional<std::string> found = find_program(path);
  if (found && is_elf_file(*found))
    ::execv(found->c_str(), args.data());
  else
    ::execvp(path.c_str(), args.data());
  const int err = errno;
  // ENOENT for a file that is there: what it runs is not (bash: "bad interpreter", 126). It said
  // only "No such file or directory", for a script that was right there (a user trial's).
  if (err == ENOENT && found && ::access(found->c_str(), F_OK) == 0) {
    const std::optional<std::string> interpreter = hash_bang_program(*found);
    fmt::print(stderr, "heapledger run: cannot run {}: {} is not there\n", path,
               interpreter ? "its interpreter " + *interpreter : "the program loader it names");
    return kCannotExecute;
  }
  fmt::print(stderr, "heapledger run: cannot run {}: {}\n", path, std::strerror(err));
  return err == ENOENT ? kNotFound : kCannotExecute;
}

}  // namespace heapledger::cli
