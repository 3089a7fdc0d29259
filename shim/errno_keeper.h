// Keeps the program's errno across system calls heapledger makes on its own account: mmap, munmap
// or prlimit may set it even on paths whose failure we ignore, and the program must not notice.
#pragma once

#include <errno.h>

namespace heapledger::detail {

class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;

 private:
  int saved_;
};

}  // namespace heapledger::detail
