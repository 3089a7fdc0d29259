// Reads a program's ELF header and program headers (or its "#!" interpreter's) to tell before
// running it that LD_PRELOAD cannot work, so `heapledger run` says so instead of silently
// producing no report.
#include "tools/preload_check.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tools/spawn.h"

// The CLI's own ELF header, mapped by the loader (the linker defines this symbol).
extern "C" const ElfW(Ehdr) __ehdr_start;

namespace heapledger::cli {
namespace {

constexpr int kMaxInterpreterDepth = 4;  // the kernel's limit on nested "#!" interpreters

// A read-only file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

template <class T>
bool read_at(int fd, T& out, std::uint64_t offset) {
  return ::pread(fd, &out, sizeof out, off_t(offset)) == ssize_t(sizeof out);
}

// What decides whether a library can be loaded into an ELF file's process.
struct ElfKind {
  unsigned char elf_class = 0;  // ELFCLASS32 / ELFCLASS64
  unsigned char byte_order = 0;
  std::uint16_t machine = 0;
};

// e_ident, e_type and e_machine sit at the same offsets in 32- and 64-bit headers.
std::optional<ElfKind> read_elf_kind(int fd) {
  unsigned char head[EI_NIDENT + 4];
  if (!read_at(fd, head, 0) || std::memcmp(head, ELFMAG, SELFMAG) != 0) return std::nullopt;
  ElfKind k{head[EI_CLASS], head[EI_DATA], 0};
  std::memcpy(&k.machine, head + EI_NIDENT + 2, sizeof k.machine);
  return k;
}

// The CLI is built with the same toolchain as the library, so its own kind is the library's.
ElfKind library_kind() {
  const ElfW(Ehdr)& self = __ehdr_start;
  return ElfKind{self.e_ident[EI_CLASS], self.e_ident[EI_DATA], self.e_machine};
}

// Whether a native-class ELF file asks for a dynamic loader; nullopt if it cannot be read.
std::optional<bool> has_pt_interp(int fd) {
  ElfW(Ehdr) eh;
  if (!read_at(fd, eh, 0) || eh.e_phentsize < sizeof(ElfW(Phdr))) return std::nullopt;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph;
    if (!read_at(fd, ph, eh.e_phoff + std::uint64_t(i) * eh.e_phentsize)) return std::nullopt;
    if (ph.p_type == PT_INTERP) return true;
  }
  return false;
}

// The dynamic loader this CLI runs under, as named by its own PT_INTERP ("" if none).
std::string own_interpreter() {
  std::string path;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        for (int i = 0; i < info->dlpi_phnum; ++i)
          if (info->dlpi_phdr[i].p_type == PT_INTERP)
            *static_cast<std::string*>(out) =
                reinterpret_cast<const char*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        return 1;  // the first object is the program
      },
      &path);
  return path;
}

// Whether the file is a glibc dynamic loader, run as a command (`/lib64/ld-linux-x86-64.so.2
// ./prog`): it names no interpreter, as a static program does not, and takes LD_PRELOAD for the
// program it loads (said "is statically linked" and "no report will be written", a user trial's).
// The system's (this CLI's own interpreter), or one of another glibc's by its name (conda's,
// Nix's, a private install's: a review's).
bool is_a_loader(int fd, const std::string& path) {
  const std::string_view name = std::string_view(path).substr(path.rfind('/') + 1);
  if (name.starts_with("ld-linux")) return true;
  struct stat file, loader;
  const std::string interpreter = own_interpreter();
  return !interpreter.empty() && ::fstat(fd, &file) == 0 &&
         ::stat(interpreter.c_str(), &loader) == 0 && file.st_dev == loader.st_dev &&
         file.st_ino == loader.st_ino;
}

std::optional<std::string> elf_obstacle(int fd, const std::string& path) {
  std::optional<ElfKind> kind = read_elf_kind(fd);
  if (!kind) return std::nullopt;
  ElfKind lib = library_kind();
  if (kind->elf_class != lib.elf_class)
    return kind->elf_class == ELFCLASS32 ? "is a 32-bit program (the library is 64-bit)"
                                         : "is a 64-bit program (the library is 32-bit)";
  if (kind->byte_order != lib.byte_order || kind->machine != lib.machine)
    return "is built for another CPU architecture";
  if (has_pt_interp(fd) == false && !is_a_loader(fd, path)) return "is statically linked";
  return std::nullopt;
}

// The loader ignores LD_PRELOAD from outside the trusted directories in secure mode: when exec
// changes the user or group id, or grants capabilities (unless the file system is nosuid).
std::optional<std::string> secure_mode_obstacle(const std::string& path) {
  struct stat st;
  struct statvfs fs;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if (::statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_NOSUID)) return std::nullopt;
  if ((st.st_mode & S_ISUID) && st.st_uid != ::getuid()) return "is setuid";
  // S_ISGID without group execute permission means mandatory locking, not setgid.
  if ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != ::getgid())
    return "is setgid";
  if (::getuid() != 0 && ::getxattr(path.c_str(), "security.capability", nullptr, 0) > 0)
    return "has file capabilities";
  return std::nullopt;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  while (true) {
    auto begin = s.find_first_not_of(" \t");
    if (begin == s.npos) return words;
    s.remove_prefix(begin);
    auto end = std::min(s.find_first_of(" \t"), s.size());
    words.push_back(s.substr(0, end));
    s.remove_prefix(end);
  }
}

// The words of a "#!" line; none when `fd` is not a script.
std::vector<std::string> hash_bang_words(int fd) {
  char buf[256];  // the kernel reads no more of a "#!" line
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return {};
  std::string_view line(buf + 2, std::size_t(n) - 2);
  std::vector<std::string> words;
  for (std::string_view w : split_words(line.substr(0, line.find('\n')))) words.emplace_back(w);
  return words;
}

// The program a "#!" line runs: its interpreter, or for "#!/usr/bin/env [-S] NAME" the NAME
// found along PATH. nullopt when `fd` is not a script or the program is not found.
std::optional<std::string> script_interpreter(int fd) {
  const std::vector<std::string> words = hash_bang_words(fd);
  if (words.empty()) return std::nullopt;
  if (!words[0].ends_with("/env")) return words[0];
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (words[i].starts_with('-') || words[i].find('=') != std::string::npos) continue;
    return find_program(words[i]);
  }
  return std::nullopt;
}

std::optional<std::string> obstacle(const std::string& path, int depth) {
  Fd fd(path);
  if (fd.get() < 0) return std::nullopt;
  if (std::optional<std::string> interpreter = script_interpreter(fd.get())) {
    if (depth >= kMaxInterpreterDepth) return std::nullopt;
    std::optional<std::string> why = obstacle(*interpreter, depth + 1);
    if (!why) return std::nullopt;
    return fmt::format("runs {}, which {}", *interpreter, *why);
  }
  if (std::optional<std::string> why = elf_obstacle(fd.get(), path)) return why;
  return secure_mode_obstacle(path);
}

}  // namespace

std::optional<std::string> hash_bang_program(const std::string& path) {
  Fd fd(path);
  std::vector<std::string> words =
      fd.get() >= 0 ? hash_bang_words(fd.get()) : std::vector<std::string>{};
  if (words.empty()) return std::nullopt;
  return std::move(words[0]);
}

bool is_elf_file(const std::string& path) {
  Fd fd(path);
  char magic[SELFMAG];
  return fd.get() >= 0 && read_at(fd.get(), magic, 0) && std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

bool is_preloadable_library(const std::string& path) {
  Fd fd(path);
  const std::optional<ElfKind> kind = fd.get() >= 0 ? read_elf_kind(fd.get()) : std::nullopt;
  const ElfKind lib = library_kind();
  ElfW(Ehdr) eh;
  if (!kind || kind->elf_class != lib.elf_class || kind->byte_order != lib.byte_order ||
      kind->machine != lib.machine || !read_at(fd.get(), eh, 0) || eh.e_type != ET_DYN ||
      eh.e_phentsize < sizeof(ElfW(Phdr)))
    return false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph;
    if (!read_at(fd.get(), ph, eh.e_phoff + std::uint64_t(i) * eh.e_phentsize)) return false;
    if (ph.p_type != PT_DYNAMIC) continue;
    // A position-independent executable is ET_DYN too; the loader refuses to preload one.
    for (std::uint64_t at = 0; at + sizeof(ElfW(Dyn)) <= ph.p_filesz; at += sizeof(ElfW(Dyn))) {
      ElfW(Dyn) d;
      if (!read_at(fd.get(), d, ph.p_offset + at) || d.d_tag == DT_NULL) break;
      if (d.d_tag == DT_FLAGS_1 && (d.d_un.d_val & DF_1_PIE)) return false;
    }
    return true;
  }
  return false;  // no dynamic section: nothing the loader could link
}

std::optional<std::string> preload_obstacle(const std::string& path) {
  std::optional<std::string> why = obstacle(path, 0);
  if (!why) return std::nullopt;
  return fmt::format("{} {}", path, *why);
}

}  // namespace heapledger::cli
