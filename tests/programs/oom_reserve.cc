// A program that keeps a memory reserve for out-of-memory: under an address-space limit
// (current size + 512 MiB, then all of its room but 512 MiB taken: under heapledger the limit a
// program sets leaves heapledger's own reservations on top) it fills the room with 32 MiB blocks,
// then asks for one more with a new_handler that frees one reserve block per call. Under full
// tracking the freed block went to the double-free quarantine, which kept its mapping, so every
// call freed another in vain until the reserve was gone and operator new threw: the quarantine must
// give its blocks back first.
#include <sys/mman.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kBlock = std::size_t{32} << 20;
void* g_reserve[64];
int g_reserved = 0;
int g_handler_calls = 0;

void free_one_reserve_block() {
  ++g_handler_calls;
  if (g_reserved == 0) {
    std::set_new_handler(nullptr);  // nothing left: the next failure throws
    return;
  }
  ::operator delete(g_reserve[--g_reserved]);
}

long address_space_bytes() {
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  return pages * 4096;
}

// Takes all of the address space left under the limit but `keep` bytes (address space only).
void leave_only(std::size_t keep) {
  void* aside = mmap(nullptr, keep, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (aside == MAP_FAILED) return;
  for (std::size_t chunk = std::size_t{1} << 46; chunk >= 4096; chunk /= 2)
    while (mmap(nullptr, chunk, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) !=
           MAP_FAILED) {
    }
  munmap(aside, keep);
}

}  // namespace

int main() {
  const rlim_t limit = static_cast<rlim_t>(address_space_bytes()) + (rlim_t{512} << 20);
  const rlimit rl{limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 2;
  leave_only(std::size_t{512} << 20);
  while (g_reserved < 64) {
    void* p = ::operator new(kBlock, std::nothrow);
    if (!p) break;
    g_reserve[g_reserved++] = p;
  }
  const int filled = g_reserved;
  std::set_new_handler(free_one_reserve_block);
  void* block = ::operator new(kBlock);
  std::printf("oom_reserve: reserve of %d blocks, got one more after %d handler call(s), %d left\n", filled,
              g_handler_calls, g_reserved);
  ::operator delete(block);
  for (int i = 0; i < g_reserved; ++i) ::operator delete(g_reserve[i]);
  return g_handler_calls == 1 ? 0 : 1;
}
