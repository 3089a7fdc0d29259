// Stack capture for the tracker, in the private runtime; see unwind.cc.
#pragma once

namespace heapledger::detail {

void unwind_init();
// Return addresses of the calling thread, innermost first; the count written.
int unwind_backtrace(void** frames, int max);

}  // namespace heapledger::detail
