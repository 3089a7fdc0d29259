// Why LD_PRELOAD would not reach a program: static linking, setuid/setgid or file capabilities
// (the loader's secure mode), or another ELF class or machine. Scripts are judged by their
// interpreter.
#pragma once

#include <optional>
#include <string>

namespace heapledger::cli {

// "PATH is statically linked", "PATH runs /bin/x, which is setuid", ... or nullopt when the
// library can be preloaded, or when the file cannot be read (exec will report that).
std::optional<std::string> preload_obstacle(const std::string& path);

// The program a "#!" line names first (what the kernel runs for the script), if the file starts
// with one.
std::optional<std::string> hash_bang_program(const std::string& path);
// Whether the file starts as an ELF file does.
bool is_elf_file(const std::string& path);
// Whether the file is a shared library of this CLI's class and machine, which the loader can
// preload (not a position-independent executable, nor a truncated file).
bool is_preloadable_library(const std::string& path);

}  // namespace heapledger::cli
