// Runs the program in the CLI's place: PATH lookup as execvp does it, then exec.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace heapledger::cli {

// `name` as execvp would find it: a name containing '/' as is, others along $PATH.
std::optional<std::string> find_program(const std::string& name);

// Replaces the CLI with `path` run with `argv` (argv[0] kept as given). Returns only if that
// fails, having said why: 127 (not found) or 126.
int exec_program(const std::string& path, const std::vector<std::string>& argv);

}  // namespace heapledger::cli
