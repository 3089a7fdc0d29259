// Runs the program as a child of the CLI: PATH lookup as execvp does it, fork + exec, signal
// forwarding while it runs, and ending the CLI the way the child ended.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace heapledger::cli {

// `name` as execvp would find it: a name containing '/' as is, others along $PATH.
std::optional<std::string> find_program(const std::string& name);

// Runs `path` with `argv` (argv[0] kept as given) and returns its wait status. SIGINT, SIGTERM,
// SIGHUP and SIGQUIT sent to the CLI are passed on to the child meanwhile. If exec fails the child
// prints why and exits 127 (not found) or 126; if fork fails, the status says "exited with 125".
int spawn_and_wait(const std::string& path, const std::vector<std::string>& argv);

// The child's exit status; if a signal killed it, raises the same signal on the CLI (without a
// core dump) and only returns, 128 + signal, if that did not end the process.
int pass_through(int wait_status);

}  // namespace heapledger::cli
