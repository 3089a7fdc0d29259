// Runs the program under test as a child: fork + exec, signal forwarding while it runs, and
// passing its exit status (or the signal that killed it) through as the CLI's own.
#include "tools/spawn.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "tools/commands.h"

namespace heapledger::cli {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

volatile sig_atomic_t g_child = 0;  // written before the handlers are installed

// Relays a signal someone sent to the CLI. Signals the terminal generates (SI_KERNEL, si_code >
// 0) went to the whole foreground process group, the child included: relaying them would deliver
// them twice, and a second SIGINT often means "quit now".
void forward(int sig, siginfo_t* info, void*) {
  pid_t child = g_child;
  if (child > 0 && info->si_code <= 0 && info->si_pid != child) ::kill(child, sig);
}

// Signals ignored when the CLI started (nohup, "&" in a script) stay ignored, as the child's do.
void install_forwarding() {
  struct sigaction sa {
  }, current{};
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : kForwarded) {
    if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
}

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwarded) sigaddset(&set, sig);
  return set;
}

[[noreturn]] void exec_child(const std::string& path, std::vector<char*>& argv) {
  ::execvp(path.c_str(), argv.data());
  int err = errno;
  fmt::print(stderr, "heapledger: cannot run {}: {}\n", path, std::strerror(err));
  ::_exit(err == ENOENT ? kNotFound : kCannotExecute);
}

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

int spawn_and_wait(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> args;  // built before fork: the child only execs
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Blocked across fork so that no signal reaches a handler before g_child is set, and the child
  // never runs the handler at all (exec resets handlers, the old mask is restored before it).
  sigset_t block = forwarded_set(), old;
  ::sigprocmask(SIG_BLOCK, &block, &old);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    exec_child(path, args);
  }
  if (pid < 0) {
    int err = errno;
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    fmt::print(stderr, "heapledger: cannot start {}: {}\n", path, std::strerror(err));
    return kToolFailed << 8;  // as if the child had exited with kToolFailed
  }
  g_child = pid;
  install_forwarding();
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

int pass_through(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (!WIFSIGNALED(wait_status)) return kToolFailed;
  int sig = WTERMSIG(wait_status);
  // A core file would be the CLI's, and could overwrite the one the program just dumped.
  struct rlimit no_core {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  return 128 + sig;
}

}  // namespace heapledger::cli
