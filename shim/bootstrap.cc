// Library start and end: the constructor starts the tracker (the pools need no start-up: they
// reserve their memory on first use), registers the fork handlers and the quick_exit hook; the
// destructor, which runs after the program's static destructors, has the exit report written
// after every library's destructors.
#include <pthread.h>
#include <stdlib.h>

#include <atomic>

#include "heapledger/heapledger.h"
#include "shim/config.h"
#include "shim/errno_keeper.h"
#include "shim/next_symbol.h"
#include "shim/os.h"
#include "shim/pool.h"
#include "tracker/tracker.h"

// glibc's registration behind pthread_atfork (exported since 2.3.2), with the library to tie the
// handlers to as its last argument.
extern "C" int __register_atfork(void (*prepare)(), void (*parent)(), void (*child)(), void* dso_handle);

namespace heapledger::detail {

void resolve_libc_exit();  // shim/exit_api.cc

namespace {

// Lock order: the tracker's, the pools', then the registry of internal mappings, which both
// take while holding their own (a ledger shard or the large-block registry growing its table).
void before_fork() {
  tracker::prefork();
  pool::prefork();
  os::internal_prefork();
}
void after_fork_parent() {
  os::internal_postfork();
  pool::postfork();
  tracker::postfork_parent();
}
void after_fork_child() {
  os::internal_postfork();
  pool::postfork();
  tracker::postfork_child();
}

void report_at_quick_exit() { tracker::finish(); }

// quick_exit runs its handlers last registered first: the report's hook goes in before any other,
// from the first registration on (ours at start, or a library's whose constructor the loader ran
// before ours: its handler ran after the report, and the blocks it let go of or allocated were
// not in it; a trial's). For no library (at_quick_exit would name ours: see collect.cc
// at_exit_for_good).
using AtQuickExit = int (*)(void (*)(), void*);
std::atomic<AtQuickExit> g_libc_at_quick_exit{nullptr};
std::atomic<bool> g_quick_exit_hooked{false};

AtQuickExit libc_at_quick_exit() {
  return next_symbol(&g_libc_at_quick_exit, "__cxa_at_quick_exit");
}

void hook_quick_exit(AtQuickExit libc) {
  if (!g_quick_exit_hooked.exchange(true)) libc(report_at_quick_exit, nullptr);
}

void release_block(void* p) { pool::free(p); }

// Priority 101: before any constructor of ours or of the program that could allocate. errno is
// as it was: C has it zero when main starts, and the tracker's start left ENOENT there from a
// file it looked for (a review's). glibc calls every library constructor with the program's
// argc, argv and environment.
__attribute__((constructor(101))) void library_start(int argc, char** argv, char**) {
  ErrnoKeeper keep;
  tracker::set_pool_probes({pool::owns_block_start, pool::block_containing,
                            pool::lock_held_by_this_thread,
                            {pool::read_block_start, pool::hold_large, release_block}});
  tracker::start(argc, argv);
  resolve_libc_exit();
  if (tracker::active()) pool::clear_reused_large();  // the leak scan reads large blocks whole
  // Registered for no library (pthread_atfork would name ours): handlers registered for a
  // library are dropped when its destructors run, and ours run before the exit report, which
  // other threads may fork during.
  __register_atfork(before_fork, after_fork_parent, after_fork_child, nullptr);
  if (AtQuickExit libc = libc_at_quick_exit()) hook_quick_exit(libc);
}

// Runs from _dl_fini: after exit()'s atexit handlers and static destructors, before other
// libraries' destructors; the report comes after those (tracker::finish_after_destructors).
__attribute__((destructor(101))) void library_end() { tracker::finish_after_destructors(); }

}  // namespace
}  // namespace heapledger::detail

// Behind at_quick_exit (glibc's libc_nonshared.a calls it with the caller's library).
extern "C" HL_EXPORT int __cxa_at_quick_exit(void (*fn)(), void* dso) noexcept {
  using namespace heapledger::detail;
  AtQuickExit libc = libc_at_quick_exit();
  if (!libc) return -1;
  hook_quick_exit(libc);
  return libc(fn, dso);
}

extern "C" HL_EXPORT const char* heapledger_version(void) { return HEAPLEDGER_VERSION; }
