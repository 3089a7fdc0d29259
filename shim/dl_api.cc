// dlclose, interposed: after a library is unloaded another may be loaded at its addresses, so
// the tracker starts a new "unload epoch" in which identical return addresses are different code.
#include <dlfcn.h>

#include <atomic>

#include "shim/config.h"
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
