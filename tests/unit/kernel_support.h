// What the running kernel offers, for tests of features that depend on it.
#pragma once

#include <sys/mman.h>

#include <cstddef>

namespace heapledger::detail {

// Whether this kernel faults pages in ahead on request (MADV_POPULATE_WRITE, Linux 5.14): asked
// directly, so that a test of os::prefault does not skip when os::prefault is what is broken.
inline bool kernel_prefaults() {
  constexpr std::size_t kPage = 4096;
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  const bool ok = madvise(p, kPage, 23 /* MADV_POPULATE_WRITE */) == 0;
  munmap(p, kPage);
  return ok;
}

}  // namespace heapledger::detail
