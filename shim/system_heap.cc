// The C library's allocator as the pools' fallback; see system_heap.h.
#include "shim/system_heap.h"

#include <dlfcn.h>
#include <gnu/lib-names.h>

#include <atomic>
#include <cstring>

#include "shim/config.h"
#include "shim/spin_lock.h"

namespace heapledger::detail::system_heap {
namespace {

struct Functions {
  void* (*malloc)(std::size_t);
  void (*free)(void*);
  void* (*calloc)(std::size_t, std::size_t);
  void* (*realloc)(void*, std::size_t);
  void* (*memalign)(std::size_t, std::size_t);
  std::size_t (*usable_size)(void*);
  int (*trim)(std::size_t);
  int (*set_option)(int, int);
};

template <typename Fn>
void find(void* libc, Fn* out, const char* name) {
  *out = reinterpret_cast<Fn>(dlsym(libc, name));
}

// glibc's blocks are aligned to 16 bytes (x86-64): its malloc serves any alignment up to that.
constexpr std::size_t kMallocAlign = 16;

SpinLock g_lock;          // for the one thread that publishes what start() found
Functions g_functions{};  // set once, before g_on; read after it
std::atomic<bool> g_on{false};
std::atomic<bool> g_missing{false};  // not there: looked for once only
std::atomic<bool> g_served{false};   // alloc() has handed out a block
constinit thread_local bool tl_finding HL_TLS = false;

}  // namespace

bool on() { return g_on.load(std::memory_order_acquire); }
bool finding() { return tl_finding; }
bool served() { return g_served.load(std::memory_order_acquire); }

bool start() {
  if (on()) return true;
  if (tl_finding || g_missing.load(std::memory_order_relaxed)) return false;
  // In the C library itself: past this library (RTLD_NEXT), a program linked with jemalloc
  // found jemalloc's malloc_usable_size, which then sized glibc's blocks (a crash).
  tl_finding = true;
  Functions f{};
  if (void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD)) {
    find(libc, &f.malloc, "__libc_malloc");
    find(libc, &f.free, "__libc_free");
    find(libc, &f.calloc, "__libc_calloc");
    find(libc, &f.realloc, "__libc_realloc");
    find(libc, &f.memalign, "__libc_memalign");
    find(libc, &f.usable_size, "malloc_usable_size");
    find(libc, &f.trim, "malloc_trim");
    find(libc, &f.set_option, "mallopt");
  }
  tl_finding = false;
  if (!f.malloc || !f.free || !f.calloc || !f.realloc || !f.memalign || !f.usable_size || !f.trim ||
      !f.set_option) {
    g_missing.store(true, std::memory_order_relaxed);
    return false;
  }
  SpinGuard guard(g_lock);
  if (!on()) {
    g_functions = f;
    g_on.store(true, std::memory_order_release);
  }
  return true;
}

void* alloc(std::size_t size, std::size_t align, bool zeroed) {
  if (!g_served.load(std::memory_order_relaxed)) g_served.store(true, std::memory_order_release);
  if (align <= kMallocAlign) return zeroed ? g_functions.calloc(1, size) : g_functions.malloc(size);
  void* p = g_functions.memalign(align, size);
  if (p && zeroed) std::memset(p, 0, size);
  return p;
}

void release(void* p) { g_functions.free(p); }

std::size_t usable_size(void* p) { return g_functions.usable_size(p); }

void* realloc(void* p, std::size_t size) { return g_functions.realloc(p, size); }

namespace {
// trim and set_option where the C library's allocator does not serve: looked up on first use.
std::atomic<int (*)(std::size_t)> g_trim{nullptr};
std::atomic<int (*)(int, int)> g_set_option{nullptr};

template <typename Fn>
Fn find_once(std::atomic<Fn>* cached, const char* name) {
  Fn fn = cached->load(std::memory_order_acquire);
  if (!fn) {
    if (void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD)) find(libc, &fn, name);
    cached->store(fn, std::memory_order_release);
  }
  return fn;
}
}  // namespace

// dlopen allocates (40 bytes that stay, glibc's per-thread record of its result): at start,
// inside the tracker's start, that block is the tracker's, where a program's first mallopt() found
// it charged to itself, still reachable, on a line it never allocated on (a user trial).
void resolve_options() {
  find_once(&g_trim, "malloc_trim");
  find_once(&g_set_option, "mallopt");
}

int trim(std::size_t pad) {
  if (on()) return g_functions.trim(pad);
  auto fn = find_once(&g_trim, "malloc_trim");
  return fn ? fn(pad) : 0;
}

int set_option(int param, int value) {
  if (on()) return g_functions.set_option(param, value);
  auto fn = find_once(&g_set_option, "mallopt");
  return fn ? fn(param, value) : 1;
}

}  // namespace heapledger::detail::system_heap
