// Module map; see modules.h.
#include "tracker/modules.h"

#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "shim/kernel_call.h"
#include "shim/os.h"
#include "tracker/internal_alloc.h"

namespace heapledger::detail {
namespace {

constexpr std::size_t kScanMax = 2048;
constexpr std::size_t kNamePool = 256 * 1024;

struct Scanned {
  std::uintptr_t start, end, bias;
  const char* name;  // points into ScanBuffer::names
  eh_frame::Tables eh;
};

// Filled by one dl_iterate_phdr pass. Mapped per scan (scans are rare), so the scan allocates
// nothing from the heap and names survive a concurrent dlclose.
struct ScanBuffer {
  Scanned items[kScanMax];
  std::size_t count;
  std::uint64_t generation;
  std::uint64_t known_generation;
  bool unchanged;
  std::size_t names_used;
  char names[kNamePool];
};

// The main program's absolute path, into out (PATH_MAX bytes; "" if unknown): /proc/self/exe,
// unless the dynamic loader was run as a command (`/lib64/ld-linux-x86-64.so.2 ./prog`), which
// /proc/self/exe then names, and whose frames the program's were symbolized as (a user trial's:
// "remove_slotinfo dl-close.c:96", and its leaks called still reachable, as the loader's). The
// kernel mapped no interpreter then (AT_BASE is 0) and the loader set AT_EXECFN to the program's
// path, as it was given. Without /proc, the same.
void find_main_program_path(char* out) {
  const auto* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
  if (execfn && getauxval(AT_BASE) == 0 && realpath(execfn, out)) return;
  ssize_t n = readlink("/proc/thread-self/exe", out, PATH_MAX - 1);  // see reporter.cc
  if (n <= 0) n = readlink("/proc/self/exe", out, PATH_MAX - 1);
  out[n > 0 ? n : 0] = 0;
  if (n <= 0 && (!execfn || !realpath(execfn, out))) out[0] = 0;
}

// The object's absolute path: the main program reports an empty name, dlopen("./x.so") a
// relative one, and so does an object found through an empty element of a search path
// ("libfoo.so", with LD_LIBRARY_PATH=":/opt/lib"). The vDSO's name ("linux-vdso.so.1") is no
// path: every scan asked realpath for it, a getcwd and a failed readlink.
const char* keep_name(ScanBuffer* b, const char* name, bool vdso) {
  char absolute[PATH_MAX];
  if (!name[0]) {
    name = main_program_path();
  } else if (name[0] != '/' && !vdso && realpath(name, absolute)) {
    name = absolute;
  }
  std::size_t len = std::strlen(name);
  if (b->names_used + len + 1 > kNamePool) return "";
  char* dst = b->names + b->names_used;
  std::memcpy(dst, name, len + 1);
  b->names_used += len + 1;
  return dst;
}

int scan_one(dl_phdr_info* info, std::size_t size, void* arg) {
  auto* b = static_cast<ScanBuffer*>(arg);
  if (b->count == 0 && size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    b->generation = info->dlpi_adds + info->dlpi_subs;
    if (b->generation == b->known_generation) {
      b->unchanged = true;
      return 1;
    }
  }
  if (b->count >= kScanMax) return 1;
  std::uintptr_t lo = ~std::uintptr_t{0}, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t s = info->dlpi_addr + ph.p_vaddr;
    if (s < lo) lo = s;
    if (s + ph.p_memsz > hi) hi = s + ph.p_memsz;
  }
  // The vDSO: the kernel's image, whose ELF header the auxiliary vector gives.
  const std::uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (hi > lo)
    b->items[b->count++] =
        Scanned{lo, hi, info->dlpi_addr, keep_name(b, info->dlpi_name, vdso - lo < hi - lo),
                eh_frame::find(info->dlpi_phdr, info->dlpi_phnum, info->dlpi_addr)};
  return 0;
}

// A module's path in internal memory.
const char* copy_path(const char* name) {
  std::size_t len = std::strlen(name);
  auto* copy = static_cast<char*>(internal_alloc(len + 1));
  if (!copy) return "";
  std::memcpy(copy, name, len + 1);
  return copy;
}

// Two libraries of the same size can be loaded at the same address one after the other.
bool same_object(const Module& m, const Scanned& s) {
  return m.start == s.start && m.end == s.end && m.bias == s.bias && std::strcmp(m.path, s.name) == 0;
}

int read_generation(dl_phdr_info* info, std::size_t size, void* arg) {
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
    *static_cast<std::uint64_t*>(arg) = info->dlpi_adds + info->dlpi_subs;
  return 1;  // the first object is enough
}

}  // namespace

namespace {
thread_local int tl_loader_depth HL_TLS;  // this thread's calls of ours in the loader, nested
}  // namespace

bool ModuleMap::LoaderCalls::enter() {
  // A thread already inside (a signal handler interrupted it) goes on: fork waits for it anyway.
  if (tl_loader_depth == 0) {
    in_flight_.fetch_add(1);
    if (fork_pending_.load()) {  // seq_cst both sides: prefork sees the count, or this the flag
      in_flight_.fetch_sub(1);
      return false;
    }
  }
  ++tl_loader_depth;
  return true;
}

void ModuleMap::LoaderCalls::leave() {
  if (--tl_loader_depth == 0) in_flight_.fetch_sub(1);
}

void ModuleMap::LoaderCalls::prefork() {
  fork_pending_.store(true);
  // The calls in flight end without us: none waits for anything fork's handlers hold (the
  // loader's lock at most, whose holder frees and allocates through here without waiting).
  const std::int64_t own = tl_loader_depth > 0 ? 1 : 0;
  while (in_flight_.load() > own) os::yield_cpu();
}

void ModuleMap::LoaderCalls::postfork(bool child) {
  if (child) in_flight_.store(tl_loader_depth > 0 ? 1 : 0);  // the other threads' calls are gone
  fork_pending_.store(false);
}

// Objects loaded or unloaded since the last scan? Cheap: one callback, nothing mapped.
void ModuleMap::sync() {
  std::uint64_t generation = ~std::uint64_t{0};
  {
    LoaderCall loader(loader_calls_);
    if (!loader) return;
    dl_iterate_phdr(read_generation, &generation);
  }
  if (generation != generation_.load(std::memory_order_acquire)) refresh();
}

void ModuleMap::refresh() {
  auto* b = static_cast<ScanBuffer*>(os::map_internal(sizeof(ScanBuffer)));
  if (!b) return;
  b->known_generation = generation_.load(std::memory_order_acquire);
  {
    LoaderCall loader(loader_calls_);
    if (!loader) return os::unmap_internal(b, sizeof(ScanBuffer));
    dl_iterate_phdr(scan_one, b);
  }
  if (!b->unchanged) merge(b->items, b->count, b->generation);
  os::unmap_internal(b, sizeof(ScanBuffer));
}

// Marks what is still loaded and appends new objects. Lock order is always dynamic linker, then
// lock_, never the reverse: nothing here calls into the dynamic linker.
void ModuleMap::merge(const void* scanned, std::size_t count, std::uint64_t generation) {
  const auto* items = static_cast<const Scanned*>(scanned);
  SpinGuard guard(lock_);
  std::size_t n = count_.load(std::memory_order_relaxed);
  for (std::size_t m = 0; m < n; ++m) modules_[m].loaded = false;
  for (std::size_t i = 0; i < count; ++i) {
    bool found = false;
    for (std::size_t m = 0; m < n && !found; ++m)
      if (same_object(modules_[m], items[i])) modules_[m].loaded = found = true;
    if (found || n >= kMaxModules) continue;
    modules_[n++] = Module{items[i].start,           items[i].end, items[i].bias,
                           copy_path(items[i].name), items[i].eh,  true};
  }
  count_.store(n, std::memory_order_release);
  generation_.store(generation, std::memory_order_release);
}

std::uint16_t ModuleMap::lookup(std::uintptr_t addr) {
  std::size_t n = count_.load(std::memory_order_relaxed);
  for (std::size_t m = 0; m < n; ++m) {
    const Module& mod = modules_[m];
    if (mod.loaded && addr >= mod.start && addr < mod.end) return static_cast<std::uint16_t>(m);
  }
  return kUnknown;
}

std::uint16_t ModuleMap::find(std::uintptr_t addr) {
  {
    SpinGuard guard(lock_);
    std::uint16_t m = lookup(addr);
    if (m != kUnknown) return m;
  }
  sync();
  SpinGuard guard(lock_);
  return lookup(addr);
}

void ModuleMap::find_all(const std::uintptr_t* addrs, std::size_t n, std::uint16_t* out) {
  bool refreshed = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {  // same module as the previous frame?
      Module prev = out[i - 1] == kUnknown ? Module{} : get(out[i - 1]);
      if (addrs[i] >= prev.start && addrs[i] < prev.end) {
        out[i] = out[i - 1];
        continue;
      }
    }
    {
      SpinGuard guard(lock_);
      out[i] = lookup(addrs[i]);
    }
    if (out[i] == kUnknown && !refreshed) {
      sync();
      refreshed = true;
      SpinGuard guard(lock_);
      out[i] = lookup(addrs[i]);
    }
  }
}

Module ModuleMap::get(std::uint16_t index) {
  SpinGuard guard(lock_);
  return index < count_.load(std::memory_order_relaxed) ? modules_[index] : Module{};
}

// Found by the first scan, at start, and kept: AT_EXECFN may be relative to the directory the
// program started in, and a scan after a chdir (any dlopen makes one) named the loader again,
// or another file of that relative name (a review's).
const char* main_program_path() {
  static constinit char path[PATH_MAX] = {};
  static constinit std::atomic<bool> found{false};
  if (!found.load(std::memory_order_acquire)) {
    find_main_program_path(path);
    found.store(true, std::memory_order_release);
  }
  return path;
}

}  // namespace heapledger::detail
