// Backtraces with libunwind's fast path: unw_backtrace walks cached unwind info without a full
// cursor per frame; the per-thread cache avoids a lock per step. Lives in the private runtime.
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "tracker/unwind.h"

namespace heapledger::detail {

void unwind_init() { unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD); }

int unwind_backtrace(void** frames, int max) { return unw_backtrace(frames, max); }

}  // namespace heapledger::detail
