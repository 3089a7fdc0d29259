// Linux implementation of shim/os.h: mmap, mprotect, mremap, madvise. errno is preserved on
// success paths so callers see the program's own errno unchanged.
#include <errno.h>
#include <sys/mman.h>

#include <cstdint>

#include "shim/os.h"

namespace heapledger::detail::os {
namespace {

// mmap/munmap may set errno even on success paths we ignore; the program must not notice.
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }

 private:
  int saved_;
};

void* checked(void* p) { return p == MAP_FAILED ? nullptr : p; }

}  // namespace

void* reserve(std::size_t bytes) {
  ErrnoKeeper keep;
  return checked(mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
}

bool commit(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  return mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0;
}

void* map(std::size_t bytes) {
  ErrnoKeeper keep;
  return checked(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

void* map_aligned(std::size_t bytes, std::size_t alignment) {
  if (alignment <= kPageSize) return map(bytes);
  std::size_t span = bytes + alignment;
  if (span < bytes) return nullptr;
  auto* raw = static_cast<char*>(map(span));
  if (!raw) return nullptr;
  auto addr = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = (addr + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
  std::size_t head = aligned - addr;
  std::size_t tail = span - head - bytes;
  if (head) unmap(raw, head);
  if (tail) unmap(reinterpret_cast<char*>(aligned) + bytes, tail);
  return reinterpret_cast<void*>(aligned);
}

void unmap(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  munmap(p, bytes);
}

void* remap(void* p, std::size_t old_bytes, std::size_t new_bytes) {
  ErrnoKeeper keep;
  return checked(mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE));
}

void discard(void* p, std::size_t bytes) {
  ErrnoKeeper keep;
  madvise(p, bytes, MADV_DONTNEED);
}

}  // namespace heapledger::detail::os
