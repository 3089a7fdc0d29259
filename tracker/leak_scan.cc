// Leak scan; see leak_scan.h. All scratch memory is mapped internally (never a root, never the
// tracked heap) and set up before other threads stop: a stopped thread may hold the pool's or the
// tracker's locks, so nothing between stop() and resume() may take one.
#include "tracker/leak_scan.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "shim/address_map.h"
#include "shim/os.h"
#include "shim/pool.h"
#include "shim/proc_maps.h"
#include "tracker/ledger.h"
#include "tracker/stack_table.h"
#include "tracker/stop_world.h"

namespace heapledger::detail {
namespace {

// The buffer /proc/self/maps is read into once the threads are stopped (nothing may be
// allocated then): 16 MiB of a sparse mapping, or (under a limit, see Scanner::reserve) twice the
// file's size when the scan begins, 256 KiB at least. A buffer of the most for every process
// counted 16 MiB against a data limit (ulimit -d), which left no room for the scan in a program
// that had used its limit up.
constexpr std::size_t kMapsBufferMin = 256 << 10, kMapsBufferMax = 16 << 20;
constexpr std::size_t kMaxExclusions = 8192 + 8;
constexpr int kStopTimeoutMs = 250;
constexpr std::uintptr_t kRedZone = 128;  // below the stack pointer, still in use (x86-64 ABI)

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

template <class T>
T* scratch(std::size_t count) {
  return static_cast<T*>(os::map_internal(std::max<std::size_t>(count, 1) * sizeof(T)));
}
template <class T>
void release(T* p, std::size_t count) {
  if (p) os::unmap_internal(p, std::max<std::size_t>(count, 1) * sizeof(T));
}

// Reading a root mapping can fault (a file mapping past its end, a region another thread
// unmapped); the scan then skips the rest of that mapping.
// volatile: the signal handler reads it in the middle of a load; without it, the compiler dropped
// read_word's store before the load as dead (a store of the old value follows it).
thread_local sigjmp_buf* volatile tl_fault_jump = nullptr;
struct sigaction g_old_segv, g_old_bus;

void on_fault(int sig, siginfo_t*, void*) {
  if (tl_fault_jump) siglongjmp(*tl_fault_jump, 1);
  sigaction(sig, sig == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr);  // not ours: re-fault
}

// A word the heuristics look at (an interior pointer's target, a block's first word, a vtable's
// first entry), read where a fault costs only that word: the range being scanned goes on (a
// program's guard page inside a block, a file mapping past its end, ended it there).
bool read_word(std::uintptr_t addr, std::uintptr_t* out) {
  sigjmp_buf jump;
  sigjmp_buf* const outer = tl_fault_jump;
  if (sigsetjmp(jump, 0) != 0) {
    tl_fault_jump = outer;
    return false;
  }
  tl_fault_jump = &jump;
  *out = *reinterpret_cast<const volatile std::uintptr_t*>(addr);
  tl_fault_jump = outer;
  return true;
}

class FaultGuard {
 public:
  FaultGuard() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;  // NODEFER: siglongjmp leaves the mask as it was
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  }
  ~FaultGuard() {
    sigaction(SIGSEGV, &g_old_segv, nullptr);
    sigaction(SIGBUS, &g_old_bus, nullptr);
  }
};

struct Interval {
  std::uintptr_t lo, hi;
};

using proc_maps::Mapping;

class Scanner {
 public:
  // Room for up to `capacity` blocks, mapped now: once other threads are stopped, one of them
  // may hold the lock that mapping memory takes.
  Scanner(ScannedBlock* blocks, std::size_t capacity) : blocks_(blocks), cap_(capacity) {}
  ~Scanner();
  bool reserve();
  void index(std::size_t n);  // blocks_[0, n) are filled in: build the lookups; allocates nothing
  void add_exclusion(std::uintptr_t lo, std::uintptr_t hi) {
    if (excl_count_ < excl_cap_ && lo < hi) exclusions_[excl_count_++] = Interval{lo, hi};
  }
  void finish_exclusions();
  std::size_t scan_root(std::uintptr_t lo, std::uintptr_t hi);  // subtracting exclusions
  void scan_words_protected(std::uintptr_t lo, std::uintptr_t hi);
  std::size_t scan_present(std::uintptr_t lo, std::uintptr_t hi);  // returns the bytes read
  bool knows_present() const { return pagemap_ >= 0; }  // else scan_present reads everything
  void scan_word(std::uintptr_t w) { reach_from_root(w); }
  void seed(std::size_t i) {
    if (blocks_[i].reach < Reach::kReachable) {
      blocks_[i].reach = Reach::kReachable;
      w1_[w1_n_++] = static_cast<std::uint32_t>(i);
    }
  }
  std::size_t flood();
  void classify_unreached();
  char* maps_buffer() { return maps_; }
  std::size_t maps_capacity() const { return maps_cap_; }
  void set_maps_size(std::size_t n) { maps_len_ = n; }
  // The buffer and what was read into it, for the caller to release (LeakScan keeps it for the
  // report).
  char* take_maps(std::size_t* cap, std::size_t* len) {
    *cap = maps_cap_, *len = maps_len_;
    maps_cap_ = maps_len_ = 0;
    return std::exchange(maps_, nullptr);
  }
  // The process's mappings, for the multiple-inheritance heuristic (see points_to_start).
  void note_mapping(const Mapping& m) {  // in address order, as /proc lists them
    if (m.anonymous || m.device) return;
    if (m.read_only && read_only_n_ < module_cap_) read_only_[read_only_n_++] = {m.lo, m.hi};
    if (m.executable && code_n_ < module_cap_) code_[code_n_++] = {m.lo, m.hi};
  }

 private:
  // The modules' ranges kept for the heuristics, in address order: as many as the kernel allows
  // mappings by default (vm.max_map_count) where a sparse mapping is free, else 4,096. Those past
  // the cap were dropped: 4,096 read-only mappings of files below a program's own left its
  // vtables out, and a C++ object held through a base class's pointer was "possibly lost" (a
  // review's note; unit test LeakScan.ModulesPastManyFileMappingsStillHaveVtables).
  static constexpr std::size_t kModuleRangesSized = 4096, kModuleRangesRoomy = 65536;
  std::size_t module_cap_ = kModuleRangesSized;
  std::int64_t find(std::uintptr_t w, bool* exact) const;
  bool points_to_start(const ScannedBlock& b, std::uintptr_t w) const;
  static bool counted_prefix(const ScannedBlock& b, std::uintptr_t w);
  static bool string_body(const ScannedBlock& b, std::uintptr_t w);
  static bool inside(std::uintptr_t a, const Interval* r, std::size_t n);
  bool second_base(const ScannedBlock& b, std::uintptr_t w) const;
  bool vtable(std::uintptr_t v) const;
  void reach_from_root(std::uintptr_t w);

  ScannedBlock* blocks_;
  std::size_t cap_;
  std::size_t n_ = 0;
  std::uint32_t* hash_ = nullptr;  // block start -> index + 1
  std::size_t hash_cap_ = 0;       // mapped (for cap_ blocks)
  std::size_t hash_mask_ = 0;      // in use (for the blocks there are: every page is a fault)
  std::uint32_t* large_ = nullptr;  // indexes of blocks outside the small region, by address
  std::size_t large_n_ = 0;
  std::uintptr_t large_lo_ = 0, large_hi_ = 0;
  std::uint32_t* w1_ = nullptr;  // reached through a pointer to the start
  std::size_t w1_n_ = 0;
  std::uint32_t* w2_ = nullptr;  // reached only through interior pointers
  std::size_t w2_n_ = 0;
  Interval* exclusions_ = nullptr;
  std::size_t excl_count_ = 0, excl_cap_ = 0;
  char* maps_ = nullptr;
  std::size_t maps_cap_ = 0, maps_len_ = 0;
  Interval* read_only_ = nullptr;  // file mappings readable, not writable or executable
  Interval* code_ = nullptr;       // file mappings executable
  std::size_t read_only_n_ = 0, code_n_ = 0;
  int pagemap_ = -1;  // /proc/self/pagemap: which pages exist (present or swapped)
  unsigned __int128 magic_[kNumClasses];
};

Scanner::~Scanner() {
  if (pagemap_ >= 0) close(pagemap_);
  release(hash_, hash_cap_);
  release(large_, cap_);
  release(w1_, cap_);
  release(w2_, cap_);
  release(exclusions_, excl_cap_);
  release(maps_, maps_cap_);
  release(read_only_, module_cap_);
  release(code_, module_cap_);
}

// The process's /proc file of that name, through this thread's directory: /proc/self names the
// main thread, and once it has ended (pthread_exit from main, the process running on in other
// threads) its maps and pagemap read empty, which left the scan with no roots at all. /proc/self
// on kernels without /proc/thread-self (before 3.17).
int open_proc(const char* name) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/thread-self/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) return fd;
  std::snprintf(path, sizeof path, "/proc/self/%s", name);
  return open(path, O_RDONLY | O_CLOEXEC);
}

std::size_t hash_slot(std::uintptr_t start, std::size_t mask) {
  return static_cast<std::size_t>(mix_address(start) >> 20) & mask;
}

// The length of /proc/self/maps now (0 if it cannot be read).
std::size_t maps_bytes_now() {
  const int fd = open_proc("maps");
  if (fd < 0) return 0;
  char chunk[4096];
  std::size_t total = 0;
  for (ssize_t n; (n = read(fd, chunk, sizeof chunk)) > 0;) total += static_cast<std::size_t>(n);
  close(fd);
  return total;
}

bool Scanner::reserve() {
  pagemap_ = open_proc("pagemap");
  hash_cap_ = 16;
  while (hash_cap_ < 2 * cap_) hash_cap_ *= 2;
  hash_ = scratch<std::uint32_t>(hash_cap_);
  large_ = scratch<std::uint32_t>(cap_);
  w1_ = scratch<std::uint32_t>(cap_);
  w2_ = scratch<std::uint32_t>(cap_);
  excl_cap_ = kMaxExclusions + cap_;
  exclusions_ = scratch<Interval>(excl_cap_);
  // The most room for /proc/self/maps, in a sparse mapping: the pages its text fills are all it
  // costs (not locked and filled whole after the program's mlockall(MCL_FUTURE), never a huge
  // page: a review's, 16 MiB more RSS at every exit of a program that locks its memory). Sized to
  // the file's length as it was now, it was read once more for that (35 us and more a read, one
  // of three at every reporting exit); so sized still where a sparse mapping is not free (a data
  // limit, strict overcommit) or under a limit on the address space, where the program's threads,
  // not stopped yet, and the reporter after the scan need what is left (a reporter that would not
  // fit lost the report).
  const bool roomy = os::address_space_left() == SIZE_MAX && os::sparse_mapping_free();
  maps_cap_ = roomy ? kMapsBufferMax : 0;
  if (!maps_cap_ || !(maps_ = static_cast<char*>(os::map_internal_sparse(maps_cap_)))) {
    maps_cap_ = std::clamp(2 * maps_bytes_now(), kMapsBufferMin, kMapsBufferMax);
    maps_ = scratch<char>(maps_cap_);
  }
  // Sparse too where it is free (not locked and filled whole after mlockall: see above); where
  // that fails (mlockall(MCL_FUTURE) charges even a sparse mapping to the locked-memory limit),
  // 4,096 of each as before: 65,536 made so were refused too, and the scan failed where it ran
  // before (a review's).
  module_cap_ = kModuleRangesRoomy;
  if (roomy) {
    read_only_ = static_cast<Interval*>(os::map_internal_sparse(module_cap_ * sizeof(Interval)));
    code_ = static_cast<Interval*>(os::map_internal_sparse(module_cap_ * sizeof(Interval)));
  }
  if (!read_only_ || !code_) {
    release(read_only_, module_cap_);
    release(code_, module_cap_);
    module_cap_ = kModuleRangesSized;
    read_only_ = scratch<Interval>(module_cap_);
    code_ = scratch<Interval>(module_cap_);
  }
  // Division by a class size as a multiply: exact for offsets below 2^36 (see pool.h).
  for (unsigned c = 0; c < kNumClasses; ++c) magic_[c] = ~std::uint64_t{0} / kClassSize[c] + 1;
  return hash_ && large_ && w1_ && w2_ && exclusions_ && maps_ && read_only_ && code_;
}

void Scanner::index(std::size_t n) {
  n_ = n;
  // The table was mapped for the capacity (a quarter more blocks than before the stop, and
  // 65,536): sized for the blocks there are, a small program touches 2 of its pages, not 256
  // (a page fault costs 15 us on some VMs: 4 ms of every process's exit).
  std::size_t used = 16;
  while (used < 2 * n) used *= 2;
  hash_mask_ = used - 1;
  const pool::Region region = pool::g_region;
  for (std::size_t i = 0; i < n_; ++i) {
    std::size_t s = hash_slot(blocks_[i].start, hash_mask_);
    while (hash_[s]) s = (s + 1) & hash_mask_;
    hash_[s] = static_cast<std::uint32_t>(i + 1);
    if (blocks_[i].start - region.base >= region.size) large_[large_n_++] = static_cast<std::uint32_t>(i);
  }
  std::sort(large_, large_ + large_n_,
            [&](std::uint32_t a, std::uint32_t b) { return blocks_[a].start < blocks_[b].start; });
  if (large_n_) {
    large_lo_ = blocks_[large_[0]].start;
    const ScannedBlock& last = blocks_[large_[large_n_ - 1]];
    large_hi_ = last.start + std::max<std::uint64_t>(last.size, 1);
  }
}

// The block `w` points into, or -1. *exact: w is the block's first byte.
std::int64_t Scanner::find(std::uintptr_t w, bool* exact) const {
  const pool::Region& region = pool::g_region;
  std::uintptr_t off = w - region.base;
  std::size_t idx;
  if (off < region.size) {
    const pool::Place at = pool::place_of(w);
    const unsigned cls = at.cls;
    std::uintptr_t in_class = at.offset;  // into the class's range or starter slice
    const std::uintptr_t first = pool::part_offset(cls, at.part);
    if (in_class < first) return -1;
    in_class -= first;
    auto slot = static_cast<std::uintptr_t>((in_class * magic_[cls]) >> 64);
    std::uintptr_t start = w - in_class + slot * kClassSize[cls];
    std::size_t s = hash_slot(start, hash_mask_);
    for (;; s = (s + 1) & hash_mask_) {
      if (!hash_[s]) return -1;
      if (blocks_[hash_[s] - 1].start == start) break;
    }
    idx = hash_[s] - 1;
  } else {
    if (w < large_lo_ || w >= large_hi_) return -1;
    const std::uint32_t* it = std::upper_bound(large_, large_ + large_n_, w, [&](std::uintptr_t v, std::uint32_t b) {
      return v < blocks_[b].start;
    });
    if (it == large_) return -1;
    idx = *(it - 1);
  }
  const ScannedBlock& b = blocks_[idx];
  if (w - b.start >= b.size && w != b.start) return -1;  // past the requested size
  *exact = w == b.start || points_to_start(b, w);
  return static_cast<std::int64_t>(idx);
}

// memcheck's four default heuristics: interior pointers that are how a program refers to a
// block, so they count as pointers to its start.
bool Scanner::points_to_start(const ScannedBlock& b, std::uintptr_t w) const {
  return counted_prefix(b, w) || string_body(b, w) || second_base(b, w);
}

// length64 and newarray: a pointer 8 bytes into a block whose first word is the length of the
// rest (sqlite's allocator, many length-prefixed buffers) or an element count that divides it
// (the cookie before C++ arrays of objects with destructors).
bool Scanner::counted_prefix(const ScannedBlock& b, std::uintptr_t w) {
  std::uintptr_t first;
  if (w - b.start != 8 || b.size <= 8 || !read_word(b.start, &first)) return false;
  const std::uint64_t rest = b.size - 8;
  return first == rest || (first > 0 && first <= rest && rest % first == 0);
}

// stdstring: a pointer 24 bytes into a block laid out as the copy-on-write std::string of the old
// libstdc++ ABI (length, capacity, reference count, then the characters and their terminator):
// the string object holds a pointer to the characters.
bool Scanner::string_body(const ScannedBlock& b, std::uintptr_t w) {
  std::uintptr_t length, capacity;
  if (w - b.start != 24 || b.size < 25 || !read_word(b.start, &length) ||
      !read_word(b.start + 8, &capacity))
    return false;
  return length <= capacity && b.size == 24 + capacity + 1;
}

// A pointer into a private, read-only, non-executable file mapping (a module's read-only
// data, where vtables lie) whose first word points into a module's code (a virtual function).
bool Scanner::vtable(std::uintptr_t v) const {
  std::uintptr_t first;
  return v % 8 == 0 && inside(v, read_only_, read_only_n_) && read_word(v, &first) &&
         inside(first, code_, code_n_);
}

// Whether a lies in one of the n intervals at r (in address order, not overlapping).
bool Scanner::inside(std::uintptr_t a, const Interval* r, std::size_t n) {
  const Interval* it =
      std::upper_bound(r, r + n, a, [](std::uintptr_t v, const Interval& i) { return v < i.lo; });
  return it != r && a < (it - 1)->hi;
}

// multipleinheritance: a pointer into a C++ object at one of its base-class subobjects (a `B*` to
// a `C : A, B`), found as a vtable pointer both there and at the block's start.
bool Scanner::second_base(const ScannedBlock& b, std::uintptr_t w) const {
  std::uintptr_t here, start;
  if ((w - b.start) % 8 != 0 || w - b.start + 8 > b.size || !read_word(w, &here) || !vtable(here))
    return false;
  return read_word(b.start, &start) && vtable(start);
}

void Scanner::reach_from_root(std::uintptr_t w) {
  bool exact = false;
  std::int64_t i = find(w, &exact);
  if (i < 0) return;
  Reach& r = blocks_[i].reach;
  if (exact) {
    if (r < Reach::kReachable) {
      r = Reach::kReachable;
      w1_[w1_n_++] = static_cast<std::uint32_t>(i);
    }
  } else if (r < Reach::kPossible) {
    r = Reach::kPossible;
    w2_[w2_n_++] = static_cast<std::uint32_t>(i);
  }
}

// Calls f(word) for each aligned word of [lo, hi). A fault (a page the program made
// inaccessible, even inside a heap block; a file mapping past its end; memory another thread
// unmapped) ends the range early instead of the process.
template <class F>
void for_each_word(std::uintptr_t lo, std::uintptr_t hi, F&& f) {
  sigjmp_buf jump;
  if (sigsetjmp(jump, 0) == 0) {
    tl_fault_jump = &jump;
    for (std::uintptr_t p = (lo + 7) & ~std::uintptr_t{7}; p + 8 <= hi; p += 8)
      f(*reinterpret_cast<const std::uintptr_t*>(p));
  }
  tl_fault_jump = nullptr;
}

void Scanner::scan_words_protected(std::uintptr_t lo, std::uintptr_t hi) {
  for_each_word(lo, hi, [this](std::uintptr_t w) { reach_from_root(w); });
}

// Scans only the pages that exist: a page never touched reads as zeros, and reading it would
// make the kernel map it (a program's multi-gigabyte reservation would take seconds).
std::size_t Scanner::scan_present(std::uintptr_t lo, std::uintptr_t hi) {
  constexpr std::uintptr_t kPage = 4096;
  constexpr std::size_t kBatch = 512;
  constexpr std::uint64_t kExists = 3ull << 62;  // present or swapped
  std::uint64_t entries[kBatch];
  std::uintptr_t run = 0;  // start of the current run of existing pages, 0: none
  std::size_t bytes = 0;
  auto scan = [&](std::uintptr_t from, std::uintptr_t to) {
    scan_words_protected(from, to);
    bytes += to - from;
  };
  for (std::uintptr_t page = lo & ~(kPage - 1); page < hi;) {
    std::size_t n = std::min<std::size_t>(kBatch, (hi - page + kPage - 1) / kPage);
    ssize_t got = pagemap_ < 0 ? -1
                               : pread(pagemap_, entries, n * sizeof entries[0],
                                       static_cast<off_t>(page / kPage * sizeof entries[0]));
    if (got != static_cast<ssize_t>(n * sizeof entries[0])) {  // no pagemap: scan it all
      scan(std::max(run ? run : page, lo), hi);
      return bytes;
    }
    for (std::size_t i = 0; i < n; ++i, page += kPage) {
      bool exists = entries[i] & kExists;
      if (exists && !run) run = page;
      if (!exists && run) {
        scan(std::max(run, lo), std::min(page, hi));
        run = 0;
      }
    }
  }
  if (run) scan(std::max(run, lo), hi);
  return bytes;
}

void Scanner::finish_exclusions() {
  std::sort(exclusions_, exclusions_ + excl_count_,
            [](const Interval& a, const Interval& b) { return a.lo < b.lo; });
}

std::size_t Scanner::scan_root(std::uintptr_t lo, std::uintptr_t hi) {
  std::size_t scanned = 0;
  const Interval* e = std::lower_bound(exclusions_, exclusions_ + excl_count_, lo,
                                       [](const Interval& x, std::uintptr_t v) { return x.hi <= v; });
  for (std::uintptr_t cursor = lo; cursor < hi;) {
    while (e < exclusions_ + excl_count_ && e->hi <= cursor) ++e;
    std::uintptr_t stop = e < exclusions_ + excl_count_ ? std::min(hi, std::max(cursor, e->lo)) : hi;
    if (stop > cursor) {
      scan_present(cursor, stop);
      scanned += stop - cursor;
    }
    if (stop >= hi || e == exclusions_ + excl_count_) break;
    cursor = e->hi;
  }
  return scanned;
}

// Reachable first (start pointers from roots and reachable blocks), then possible (interior
// pointers anywhere on the way, and everything a possible block points to).
std::size_t Scanner::flood() {
  std::size_t scanned = 0;
  while (w1_n_) {
    const ScannedBlock& b = blocks_[w1_[--w1_n_]];
    scan_words_protected(b.start, b.start + b.size);
    scanned += b.size;
  }
  while (w2_n_) {
    const ScannedBlock& b = blocks_[w2_[--w2_n_]];
    if (b.reach == Reach::kReachable) continue;
    for_each_word(b.start, b.start + b.size, [this](std::uintptr_t w) {
      bool exact = false;
      std::int64_t i = find(w, &exact);
      if (i >= 0 && blocks_[i].reach < Reach::kPossible) {
        blocks_[i].reach = Reach::kPossible;
        w2_[w2_n_++] = static_cast<std::uint32_t>(i);
      }
    });
    scanned += b.size;
  }
  return scanned;
}

// Each unreached block not yet claimed leads a lost structure: it is definite, and everything
// it reaches that was unreached is indirect (so a lost cycle keeps one definite block). Each
// indirect block's holder is the stack of the definite block heading its structure.
void Scanner::classify_unreached() {
  // The leader that claimed each indirect block (w1_ is free now; pages only touched for them).
  std::uint32_t* const claimed_by = w1_;
  for (std::size_t leader = 0; leader < n_; ++leader) {
    if (blocks_[leader].reach != Reach::kUnreached) continue;
    blocks_[leader].reach = Reach::kDefinite;  // claimed_by: only read once it is claimed
    w2_n_ = 0;
    w2_[w2_n_++] = static_cast<std::uint32_t>(leader);
    while (w2_n_) {
      const ScannedBlock& b = blocks_[w2_[--w2_n_]];
      for_each_word(b.start, b.start + b.size, [this, leader, claimed_by](std::uintptr_t w) {
        bool exact = false;
        std::int64_t i = find(w, &exact);
        if (i < 0 || static_cast<std::size_t>(i) == leader) return;
        Reach& r = blocks_[i].reach;
        if (r == Reach::kUnreached) {
          r = Reach::kIndirect;
          w2_[w2_n_++] = static_cast<std::uint32_t>(i);
        } else if (r == Reach::kDefinite) {
          r = Reach::kIndirect;  // an earlier leader, already flooded
        } else {
          return;
        }
        claimed_by[i] = static_cast<std::uint32_t>(leader);
      });
    }
  }
  // An earlier leader claimed by a later one hands its blocks on: follow the chain to the
  // definite block (claims only go to later leaders, so it ends), shortening it on the way.
  for (std::size_t i = 0; i < n_; ++i) {
    if (blocks_[i].reach != Reach::kIndirect) continue;
    std::uint32_t top = claimed_by[i];
    while (blocks_[top].reach != Reach::kDefinite) top = claimed_by[top];
    for (std::uint32_t k = static_cast<std::uint32_t>(i); k != top;) {
      const std::uint32_t next = claimed_by[k];
      claimed_by[k] = top;
      k = next;
    }
    blocks_[i].holder = blocks_[top].stack;
  }
}

std::size_t read_maps(char* buf, std::size_t cap) {
  int fd = open_proc("maps");
  if (fd < 0) return 0;
  std::size_t used = 0;
  for (ssize_t n; used + 1 < cap && (n = read(fd, buf + used, cap - 1 - used)) > 0;)
    used += static_cast<std::size_t>(n);
  close(fd);
  buf[used] = 0;
  return used;
}

const StoppedThread* thread_in(const StopTheWorld& world, std::uintptr_t lo, std::uintptr_t hi) {
  for (std::size_t t = 0; t < world.count(); ++t) {
    const StoppedThread& th = world.thread(t);
    if (th.stopped && th.sp >= lo && th.sp < hi) return &th;
  }
  return nullptr;
}

// Roots: every private writable mapping, except heapledger's own memory, the heap and the stacks
// of threads that have ended (glibc keeps them cached for reuse; their stale frames would hide
// leaks). Stacks of live threads count from their stack pointer up, for the same reason; not
// where the stack is a module's static data (a mapping of its file, or the .bss right after
// one): an array used as a signal handler's alternate stack, a coroutine's or a thread's
// (pthread_attr_setstack) put the module's other globals below the pointer, and what only they
// held came out definitely lost (a trial's). The whole mapping counts there, stale frames too.
// Which mappings are a module's comes from the modules' own extents: a neighbouring mapping
// of a file says nothing (a thread's stack mapped without a guard page lands right after a
// library's segments; a review's).
// Shared memory counts too (its pages in this process: a sparse segment is not filled in), as
// memcheck counts it: a block held only there was definitely lost (a trial's); files mapped
// shared do not (a database's, read through, would be read from disk).
std::size_t scan_roots(Scanner& scanner, const StopTheWorld& world, const RootPolicy& policy,
                       const OwnRoots& own) {
  char* maps = scanner.maps_buffer();
  const std::size_t cap = scanner.maps_capacity();
  const std::size_t len = read_maps(maps, cap);
  // A text that filled the buffer was cut short: not handed on to the report, whose symbolizer
  // reads the whole file itself then (a module replaced since it was mapped, listed past the cut,
  // was named from the new file: a review's, 60,000 mappings). The scan reads it again from the
  // start for each pass, a buffer at a time (16 MiB of text: some 150,000 mappings, or 5,000
  // with paths of 3,000 characters); it scanned no root past the cut before.
  const bool whole = len + 1 < cap;
  scanner.set_maps_size(whole ? len : 0);
  const int reread = whole ? -1 : open_proc("maps");
  const auto each_mapping = [&](auto&& f) {
    if (reread < 0) return void(proc_maps::for_each(maps, len, f));  // (cut only if not opened)
    lseek(reread, 0, SEEK_SET);
    proc_maps::for_each_read_from(reread, maps, cap, f);
  };
  // The modules' mappings first: the heuristics look at them for every root's pointers.
  each_mapping([&](const Mapping& m) { scanner.note_mapping(m); });
  std::size_t bytes = 0;
  each_mapping([&](const Mapping& m) {
    if (m.shared_memory) {
      // Without the page map, reading a sparse segment whole would fill it in: small ones only.
      constexpr std::uintptr_t kReadWhole = std::uintptr_t{16} << 20;
      if (scanner.knows_present() || m.hi - m.lo <= kReadWhole)
        bytes += scanner.scan_present(m.lo, m.hi);
      return;
    }
    if (!m.writable_private || m.device) return;
    const std::uintptr_t own_from = own.lowest_in(m.lo, m.hi);
    const StoppedThread* th = own_from ? nullptr : thread_in(world, m.lo, m.hi);
    if (own_from || th) {
      // A thread stopped in its code may be in a leaf function that keeps values in the red
      // zone; one stopped in a system call is blocked (the usual case at exit), and what lies
      // below its stack pointer is what earlier calls left there: a stale copy of a pointer the
      // program dropped made a definite leak "reachable" in about half the runs of a review's
      // program (main dropped a block, then pause()).
      const std::uintptr_t sp = own_from ? own_from : th->sp;
      const std::uintptr_t from =
          own_from ? own_from : std::max(m.lo, th->sp - (th->in_syscall ? 0 : kRedZone));
      if (policy.in_module(sp, sp + 1)) {
        bytes += scanner.scan_root(m.lo, m.hi);  // a stack in static data
      } else {
        // The line may hold a module's .bss below the stack too (the kernel merges the two).
        policy.for_each_module_part(m.lo, from, [&](std::uintptr_t lo, std::uintptr_t hi) {
          bytes += scanner.scan_root(lo, hi);
        });
        bytes += scanner.scan_root(from, m.hi);
      }
      if (th)
        for (std::uintptr_t reg : th->regs) scanner.scan_word(reg);
    } else {
      bytes += scanner.scan_root(m.lo, m.hi);
    }
  });
  if (reread >= 0) close(reread);
  for (int i = 0; i < own.n_registers; ++i) scanner.scan_word(own.registers[i]);
  return bytes;
}

// The length of large block b's mapping: from the pools' snapshot (sorted by address), or for a
// block mapped after it, its size in pages.
std::size_t large_mapping_length(const pool::LargeMapping* large, std::size_t n,
                                 const ScannedBlock& b) {
  const pool::LargeMapping* it =
      std::lower_bound(large, large + n, b.start,
                       [](const pool::LargeMapping& s, std::uintptr_t v) { return s.start < v; });
  if (it != large + n && it->start == b.start) return std::max<std::size_t>(it->length, b.size);
  return (std::max<std::uint64_t>(b.size, 1) + os::kPageSize - 1) & ~(os::kPageSize - 1);
}

// Whether a live thread's stack pointer lies in [lo, hi): a cached stack may have been reused.
bool live_stack_in(const StopTheWorld& world, const OwnRoots& own, std::uintptr_t lo,
                   std::uintptr_t hi) {
  return own.lowest_in(lo, hi) != 0 || thread_in(world, lo, hi) != nullptr;
}

}  // namespace

void OwnRoots::add_registers(const std::uintptr_t* regs, int n) {
  for (int i = 0; i < n && n_registers < kMaxRegisters; ++i) registers[n_registers++] = regs[i];
}

void OwnRoots::add_interrupted(const InterruptedFrame& frame) {
  // A frame blocked in a system call (pause(), read() until the signal) has none in use: stale
  // copies there made a definite leak "reachable" (a review's).
  const std::uintptr_t red_zone = frame.ip && at_system_call(frame.ip, frame.rax) ? 0 : kRedZone;
  if (n_from == kMaxStacks || frame.sp <= red_zone) return;
  from[n_from++] = frame.sp - red_zone;
  add_registers(frame.regs, frame.n_regs);
}

std::uintptr_t OwnRoots::lowest_in(std::uintptr_t lo, std::uintptr_t hi) const {
  std::uintptr_t lowest = 0;
  for (int i = 0; i < n_from; ++i)
    if (from[i] >= lo && from[i] < hi && (lowest == 0 || from[i] < lowest)) lowest = from[i];
  return lowest;
}

bool RootPolicy::in_module(std::uintptr_t lo, std::uintptr_t hi) const {
  for (std::size_t i = 0; i < n_modules; ++i)
    if (lo < modules[i].hi && modules[i].lo < hi) return true;
  return false;
}

bool RootPolicy::is_root(std::uint32_t stack) const {
  if (!stacks || n_root_modules == 0) return false;
  const StackRecord* r = stacks->get(stack);
  if (!r || r->depth == 0) return false;
  for (std::size_t k = 0; k < n_root_modules; ++k)
    if (r->modules()[0] == root_modules[k]) return true;
  return false;
}

LeakScan::~LeakScan() {
  if (blocks_) os::unmap_internal(blocks_, blocks_bytes_);
  release(maps_, maps_cap_);
}

// The blocks are read after the other threads stopped, so that no block can appear between the
// snapshot and the scan (a pointer moved into a block allocated meanwhile would go unseen). Until
// then only memory is mapped; after it, nothing takes a lock another thread could hold.
bool LeakScan::run(Ledger& ledger, const RootPolicy& policy, const OwnRoots& own) {
  double t0 = now_ms();
  // The roots are the mappings /proc lists. Without it (a chroot or a container with no /proc
  // mounted, or the /proc of another PID namespace mounted over this one's) there were none, and
  // every live block came out definitely lost with no word why (a user trial's): no scan then.
  if (const int fd = open_proc("maps"); fd >= 0) {
    close(fd);
  } else {
    stats_.maps_error = errno != 0 ? errno : ENOENT;
    return false;
  }
  StopTheWorld world;
  world.list_threads();
  // The large blocks' mappings. A block's mapping can be longer than the block, and holds in its
  // slack what the program wrote there before, which must not count as a root; so do the
  // quarantine's large blocks, those a free is on its way with, and the freed mappings the pools
  // keep. Read once the threads are stopped, if no stopped thread holds the pools' lock; else as
  // they were before the ledger was locked.
  constexpr int kPatience = 1 << 20;
  std::size_t live_now = pool::live_large_mappings(nullptr, 0, kPatience);
  if (live_now == pool::kLockBusy) live_now = 0;
  const std::size_t large_cap = live_now + live_now / 4 + 256;
  pool::LargeMapping* large = scratch<pool::LargeMapping>(large_cap);
  std::size_t n_large = large ? pool::live_large_mappings(large, large_cap, kPatience) : 0;
  n_large = n_large == pool::kLockBusy ? 0 : std::min(n_large, large_cap);
  ledger.lock_all();
  // Room for what other threads allocate before they are stopped.
  const std::size_t before = ledger.size_locked();
  const std::size_t capacity = before + before / 4 + 65536;
  blocks_bytes_ = capacity * sizeof(ScannedBlock);
  blocks_ = static_cast<ScannedBlock*>(os::map_internal(blocks_bytes_));
  Scanner scanner(blocks_, capacity);
  bool ok = blocks_ && scanner.reserve();
  // Once the scan's own tables are mapped: they hold blocks' addresses (the exclusions, every large
  // block's), which as roots made every large block reachable.
  static os::Range internal[8192];
  std::size_t n_internal = std::min<std::size_t>(os::internal_ranges(internal, 8192), 8192);
  if (ok) {
    FaultGuard faults;
    stats_.threads_stopped = world.stop(kStopTimeoutMs, policy.ended_at);
    // With those found started meanwhile; not those that ended before they could be stopped.
    stats_.threads = world.count() - world.gone() + world.unlisted();
    if (policy.while_stopped) policy.while_stopped(policy.while_stopped_arg);
    count_ = 0;
    ledger.for_each_locked([&](std::uintptr_t addr, const Record& r) {
      if (count_ < capacity)  // a quarter more than before the stop, and 65536: always, in practice
        blocks_[count_++] = ScannedBlock{addr,       r.size(),  kNoHolder, r.time_us(),
                                         r.thread(), r.stack(), r.kind(),  Reach::kUnreached};
    });
    scanner.index(count_);
    // Exclusions: the heap itself, heapledger's own tables and its own globals (the pools' free
    // lists and bounds point at free or never-used blocks, which must not look referenced).
    const pool::Region region = pool::g_region;
    scanner.add_exclusion(region.base, region.base + region.size);
    scanner.add_exclusion(policy.self_lo, policy.self_hi);
    for (std::size_t k = 0; k < n_internal; ++k) {
      auto lo = reinterpret_cast<std::uintptr_t>(internal[k].start);
      scanner.add_exclusion(lo, lo + internal[k].bytes);
    }
    if (large) {
      const std::size_t now = pool::live_large_mappings(large, large_cap, 1);
      if (now != pool::kLockBusy) n_large = std::min(now, large_cap);
    }
    pool::Span cached[pool::SpanCache::kEntries];
    const std::size_t n_cached = std::min(
        pool::cached_large_mappings(cached, pool::SpanCache::kEntries), pool::SpanCache::kEntries);
    for (std::size_t k = 0; k < n_cached; ++k)
      scanner.add_exclusion(cached[k].start, cached[k].start + cached[k].length);
    for (std::size_t k = 0; k < n_large; ++k)
      if (large[k].held) scanner.add_exclusion(large[k].start, large[k].start + large[k].length);
    for (std::size_t k = 0; k < count_; ++k) {
      const ScannedBlock& b = blocks_[k];
      if (b.start - region.base >= region.size)  // a large block: its whole mapping
        scanner.add_exclusion(b.start, b.start + large_mapping_length(large, n_large, b));
      if (b.kind == AllocKind::kInternal || policy.is_root(b.stack)) scanner.seed(k);
    }
    // Not while a thread runs on unstopped: it may run on a stack an ended thread left (glibc
    // hands cached stacks to new threads), or be past heapledger's exit destructor and still in
    // the program's key destructors, and its stack counts whole (a review's: a block such a
    // thread held came out definitely lost, under the warning that leaks may be hidden).
    const bool all_stopped = stats_.threads_stopped >= stats_.threads;
    for (std::size_t k = 0; all_stopped && k < policy.n_dead_stacks; ++k) {
      std::uintptr_t lo = policy.dead_stacks[k].lo, hi = policy.dead_stacks[k].hi;
      if (!live_stack_in(world, own, lo, hi)) scanner.add_exclusion(lo, hi);
    }
    scanner.finish_exclusions();
    stats_.root_bytes = scan_roots(scanner, world, policy, own);
    stats_.heap_bytes_scanned = scanner.flood();
    scanner.classify_unreached();
    stats_.threads_stopped -= world.confirm_held();
    stats_.threads_held = world.held();
    world.resume();
    release(maps_, maps_cap_);  // a scan run before
    maps_ = scanner.take_maps(&maps_cap_, &maps_len_);
  }
  ledger.unlock_all();
  release(large, large_cap);
  stats_.milliseconds = now_ms() - t0;
  return ok;
}

}  // namespace heapledger::detail
