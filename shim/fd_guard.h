// Keeps libunwind's pipe off the program's file descriptors (shim/fd_api.cc).
#pragma once

namespace heapledger::detail::fd_guard {

// Finds the code of the libunwind that `module` (a dlopen handle) links: its calls to pipe2 are
// told apart by their return address. Called once the runtime module is loaded, before libunwind
// starts; does nothing for a module without libunwind.
void find_unwinder(void* module);

}  // namespace heapledger::detail::fd_guard
