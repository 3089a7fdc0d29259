// Keeps libunwind's pipe off the program's file descriptors (shim/fd_api.cc).
#pragma once

namespace heapledger::detail::fd_guard {

// Finds libunwind's code among the loaded objects: its calls to pipe2 are told apart by their
// return address. Called once the runtime module (which links libunwind) is loaded, before
// libunwind starts.
void find_unwinder();

}  // namespace heapledger::detail::fd_guard
