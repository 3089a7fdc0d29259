// libheapledger_runtime.so: backtraces with libunwind, the one third-party library the tracker
// needs while the program runs. Loaded with RTLD_LOCAL by libheapledger.so at start, so that
// libunwind's _Unwind_* never interpose on the program's own unwinder.
#include "tracker/runtime_api.h"
#include "tracker/unwind.h"

extern "C" __attribute__((visibility("default"))) const heapledger::detail::RuntimeApi*
heapledger_runtime_api() {
  using namespace heapledger::detail;
  static const RuntimeApi api{kRuntimeAbiVersion, unwind_backtrace};
  unwind_init();
  return &api;
}
