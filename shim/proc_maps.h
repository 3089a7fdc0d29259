// Lines of /proc/self/maps, parsed without allocating: the leak scan's roots
// (tracker/leak_scan.cc) and mlockall's walk over the program's mappings (shim/mem_api.cc).
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace heapledger::detail::proc_maps {

struct Mapping {
  std::uintptr_t lo, hi;
  bool accessible;  // readable, writable or executable (not PROT_NONE)
  bool writable_private;
  bool read_only;  // private, readable, not writable or executable (a module's read-only data)
  bool executable;
  bool anonymous;  // no backing file (includes [heap], [stack])
  bool device;     // /dev/...: never read
  // Shared, writable memory no file on disk backs: MAP_SHARED|MAP_ANONYMOUS ("/dev/zero
  // (deleted)"), shm_open ("/dev/shm/..."), memfd_create, System V shared memory.
  bool shared_memory;
  // The path as the line gives it (" (deleted)" after a file removed or replaced since it was
  // mapped), into the text parsed; empty if none.
  std::string_view path;
};

// One line, "lo-hi perms offset dev inode   path", ending at `end` (a newline or the text's end).
inline bool parse(const char* line, const char* end, Mapping* m) {
  char* p = nullptr;
  m->lo = std::strtoull(line, &p, 16);
  if (*p != '-') return false;
  m->hi = std::strtoull(p + 1, &p, 16);
  if (*p != ' ' || end - p < 6) return false;
  const char* perms = p + 1;
  m->accessible = perms[0] == 'r' || perms[1] == 'w' || perms[2] == 'x';
  m->writable_private = perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p';
  m->read_only = perms[0] == 'r' && perms[1] != 'w' && perms[2] != 'x' && perms[3] == 'p';
  m->executable = perms[2] == 'x';
  const char* path = perms;
  for (int field = 0; field < 4 && path < end; ++field) {  // skip perms, offset, dev, inode
    while (path < end && *path != ' ') ++path;
    while (path < end && *path == ' ') ++path;
  }
  m->path = path < end ? std::string_view(path, static_cast<std::size_t>(end - path))
                       : std::string_view();
  m->anonymous = path >= end || *path == '[';
  m->device = !m->anonymous && end - path > 5 && std::strncmp(path, "/dev/", 5) == 0;
  auto starts = [&](const char* prefix) {
    const std::size_t n = std::strlen(prefix);
    return static_cast<std::size_t>(end - path) >= n && std::strncmp(path, prefix, n) == 0;
  };
  m->shared_memory =
      perms[0] == 'r' && perms[1] == 'w' && perms[3] == 's' &&
      (starts("/dev/zero ") || starts("/dev/shm/") || starts("/memfd:") || starts("/SYSV"));
  return true;
}

// Calls f(mapping) for each line of text[0, len) that parses; returns where the last whole line
// ended (len if the text ends in a newline, or if `partial_last` is false).
template <class F>
std::size_t for_each(const char* text, std::size_t len, F&& f, bool partial_last = false) {
  const char* line = text;
  while (line < text + len) {
    const char* end = static_cast<const char*>(
        std::memchr(line, '\n', static_cast<std::size_t>(text + len - line)));
    if (!end) {
      if (partial_last) break;
      end = text + len;
    }
    Mapping m;
    if (parse(line, end, &m)) f(m);
    line = end + 1;
  }
  return static_cast<std::size_t>(line - text) > len ? len : static_cast<std::size_t>(line - text);
}

// Reads a maps file open at fd from where it is, a buffer at a time (any number of mappings
// through `cap` bytes of buf; a line longer than that, a path near PATH_MAX, is skipped), calling
// f(mapping) for each line. System calls made directly; fd is left open.
template <class F>
void for_each_read_from(long fd, char* buf, std::size_t cap, F&& f) {
  std::size_t kept = 0;   // the start of a line the last read cut off
  bool skipping = false;  // inside a line longer than the buffer
  for (long n; (n = syscall(SYS_read, fd, buf + kept, cap - 1 - kept)) > 0;) {
    std::size_t len = kept + static_cast<std::size_t>(n), from = 0;
    if (skipping) {
      const void* newline = std::memchr(buf, '\n', len);
      if (!newline) continue;
      from = static_cast<std::size_t>(static_cast<const char*>(newline) - buf) + 1;
      skipping = false;
    }
    buf[len] = 0;
    const std::size_t used = from + for_each(buf + from, len - from, f, true);
    kept = len - used;
    if (kept == cap - 1) {
      skipping = true;
      kept = 0;
    }
    std::memmove(buf, buf + used, kept);
  }
  if (kept != 0 && !skipping) {
    buf[kept] = 0;
    for_each(buf, kept, f);
  }
}

// /proc/self/maps, read so. False if it could not be opened.
template <class F>
bool for_each_read(char* buf, std::size_t cap, F&& f) {
  const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  for_each_read_from(fd, buf, cap, f);
  syscall(SYS_close, fd);
  return true;
}

}  // namespace heapledger::detail::proc_maps
