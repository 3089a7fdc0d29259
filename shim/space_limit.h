// The address-space and data limits (RLIMIT_AS, RLIMIT_DATA) as the program sees them.
// heapledger's own mappings count against both like any others: the pools' reservation and its
// tables, about 2.9 TB of address space under full tracking, 215 GiB of it writable (a sparse
// table, which the data limit counts whole). A program that lowered either limit at run time got
// no new mapping at all: every malloc over 32 KiB failed, no thread could start, the report was
// lost. So the kernel is given the program's limit plus what heapledger holds (kept up to date
// as that grows), and reads give the program back what it set (shim/limit_api.cc).
#pragma once

#include <sys/resource.h>

#include <cstddef>

namespace heapledger::detail::space_limit {

// heapledger's own mappings: counted before one is made (a limit the program set moves up
// first), and after one is given back. data: the writable part.
void grow(std::size_t address_space, std::size_t data);
void shrink(std::size_t address_space, std::size_t data);

// setrlimit/getrlimit/prlimit for RLIMIT_AS or RLIMIT_DATA of this process. 0 or an errno value;
// want or old may be null.
int set(int resource, const rlimit* want, rlimit* old);

// Whether the program set either limit for itself (so that there is a lift to drop).
bool any_lifted();
// Around an exec (shim/exec_api.cc): the kernel's soft limits put back to the program's own, so
// the image to come starts with them; true if any was lifted. restore_lift() lifts them again.
bool drop_lift();
void restore_lift();

// The exit report's room: both soft limits raised to the hard ones while the report is written
// (the reporter module and debug information are mapped then), then put back.
struct Saved {
  rlimit limits[2];
  bool raised[2];
};
void raise_for_report(Saved* saved);
void restore_after_report(const Saved& saved);

// fork: the lock is held across fork().
void prefork();
void postfork();

}  // namespace heapledger::detail::space_limit
