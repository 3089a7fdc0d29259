// libheapledger_runtime.so: backtraces with libunwind, the one third-party library the tracker
// needs while the program runs. Loaded with RTLD_LOCAL by libheapledger.so at start, so that
// libunwind's _Unwind_* never interpose on the program's own unwinder.
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "tracker/runtime_api.h"

// The tracker calls unw_backtrace itself, not a wrapper: every frame between the program and the
// unwinder is one more step on every allocation and free.
extern "C" __attribute__((visibility("default"))) const heapledger::detail::RuntimeApi*
heapledger_runtime_api() {
  using namespace heapledger::detail;
  static const RuntimeApi api{kRuntimeAbiVersion, unw_backtrace};
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  return &api;
}
