// dlclose, interposed: after a library is unloaded another may be loaded at its addresses, so
// the tracker starts a new "unload epoch" in which identical return addresses are different code.
// pthread_getattr_np, interposed: see fast_unwind.h (a JVM calls it first thing in every thread).
// sigaltstack, interposed: the walk needs the bounds of a signal stack installed with
// SS_AUTODISARM, which sigaltstack() no longer reports inside its handler (fast_unwind.h).
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "shim/config.h"
#include "tracker/fast_unwind.h"
#include "tracker/tracker.h"

using namespace heapledger::detail;

extern "C" HL_EXPORT int dlclose(void* handle) {
  using Fn = int (*)(void*);
  static std::atomic<Fn> real{nullptr};
  Fn fn = real.load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "dlclose"));
    real.store(fn, std::memory_order_release);
  }
  if (!fn) return -1;
  int result = fn(handle);
  tracker::note_unload();
  return result;
}

extern "C" HL_EXPORT int pthread_getattr_np(pthread_t thread, pthread_attr_t* attr) {
  using Fn = int (*)(pthread_t, pthread_attr_t*);
  static std::atomic<Fn> real{nullptr};
  fast_unwind::enter_pthread_getattr();  // dlsym below may allocate too
  Fn fn = real.load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pthread_getattr_np"));
    real.store(fn, std::memory_order_release);
  }
  const int result = fn ? fn(thread, attr) : ENOSYS;
  fast_unwind::leave_pthread_getattr();
  return result;
}

// As glibc's: the system call. What it installed is noted only if the kernel took it.
extern "C" HL_EXPORT int sigaltstack(const stack_t* ss, stack_t* old) noexcept {
  const int result = static_cast<int>(syscall(SYS_sigaltstack, ss, old));
  if (result == 0 && ss) fast_unwind::note_signal_stack(ss->ss_sp, ss->ss_size, ss->ss_flags);
  return result;
}
