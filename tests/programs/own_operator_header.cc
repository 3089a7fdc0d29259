// A program that replaces only the four operators the C++ standard builds the others on:
// operator new(size_t) and operator delete(void*), and their std::align_val_t forms, each putting
// a size header in front of the block (memory accounting, as programs written before C++14 do).
// Every other form (new[], nothrow new, sized and array deletes, their aligned forms) must reach
// these, as libstdc++'s definitions do: a block of the program's given to the allocator's free,
// or one of the allocator's read for a header, crashed it or leaked (std::stable_sort takes its
// buffer with nothrow new and gives it back with delete). Prints what the operators counted;
// leaks 3 blocks of 40 bytes from leak_site(). Built with HL_STATICS, it is linked with a C++
// library whose static objects allocate before heapledger's constructor runs (header_statics.cc),
// and prints that library's result first.
//   own_operator_header
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "hl_sink.h"

namespace {

constexpr std::size_t kHeader = 64;  // room for the largest alignment below; holds the size
long g_news, g_deletes, g_live_bytes, g_foreign;

void* with_header(void* raw, std::size_t n) {
  if (!raw) return nullptr;
  auto* words = static_cast<std::size_t*>(raw);
  words[0] = n;
  words[1] = 0x4845414445525321u;  // "HEADERS!": checked on delete
  ++g_news;
  g_live_bytes += static_cast<long>(n);
  return static_cast<char*>(raw) + kHeader;
}

void* header_of(void* p) {
  auto* raw = static_cast<char*>(p) - kHeader;
  auto* words = reinterpret_cast<std::size_t*>(raw);
  if (words[1] != 0x4845414445525321u) {
    ++g_foreign;  // not one of ours: the allocator's block reached our delete
    return nullptr;
  }
  ++g_deletes;
  g_live_bytes -= static_cast<long>(words[0]);
  words[1] = 0;
  return raw;
}

}  // namespace

void* operator new(std::size_t n) {
  if (void* p = with_header(std::malloc(n + kHeader), n)) return p;
  throw std::bad_alloc();
}

// Deliberately without the sized forms (GCC warns so): the C++ library's are to call this.
#pragma GCC diagnostic ignored "-Wsized-deallocation"
void operator delete(void* p) noexcept {
  if (p) std::free(header_of(p));
}

void* operator new(std::size_t n, std::align_val_t a) {
  const auto align = static_cast<std::size_t>(a);
  void* raw = nullptr;
  if (align <= kHeader && posix_memalign(&raw, kHeader, n + kHeader) == 0)
    if (void* p = with_header(raw, n)) return p;
  throw std::bad_alloc();
}

void operator delete(void* p, std::align_val_t) noexcept {
  if (p) std::free(header_of(p));
}

#ifdef HL_STATICS
int header_statics_total();
#endif

struct alignas(64) Line {
  char bytes[64];
};

__attribute__((noinline)) static void leak_site() {
  for (int i = 0; i < 3; ++i) hl_sink(std::malloc(40));  // HL_LEAK_SITE leak_site
}

int main() {
#ifdef HL_STATICS
  std::printf("statics=%d\n", header_statics_total());
#endif
  // The compiler's own choice of delete for each expression: sized or not, as configured.
  for (int i = 0; i < 10; ++i) delete new long(i);
  for (int i = 0; i < 10; ++i) delete[] new int[i + 1];
  for (int i = 0; i < 10; ++i) delete new Line;
  for (int i = 0; i < 10; ++i) delete[] new Line[i + 1];
  // Each form by name.
  ::operator delete[](::operator new[](16));
#if __cpp_sized_deallocation
  ::operator delete (::operator new(16), std::size_t{16});
  ::operator delete[](::operator new[](16), std::size_t{16});
#endif
  ::operator delete(::operator new(16, std::nothrow));
  ::operator delete(::operator new(16), std::nothrow);
  ::operator delete[](::operator new[](16, std::nothrow));
  ::operator delete[](::operator new[](16), std::nothrow);
  const std::align_val_t a{64};
  ::operator delete[](::operator new[](16, a), a);
#if __cpp_sized_deallocation
  ::operator delete (::operator new(16, a), std::size_t{16}, a);
  ::operator delete[](::operator new[](16, a), std::size_t{16}, a);
#endif
  ::operator delete(::operator new(16, a, std::nothrow), a);
  ::operator delete(::operator new(16, a), a, std::nothrow);
  ::operator delete[](::operator new[](16, a, std::nothrow), a);
  ::operator delete[](::operator new[](16, a), a, std::nothrow);
  // A standard algorithm's temporary buffer: nothrow new, then delete.
  std::vector<int> v(5000);
  for (int i = 0; i < 5000; ++i) v[static_cast<std::size_t>(i)] = (i * 7919) % 5003;
  std::stable_sort(v.begin(), v.end());
  const bool sorted = std::is_sorted(v.begin(), v.end());
  v = std::vector<int>();
  leak_site();
  std::printf("sorted=%d news=%ld deletes=%ld live=%ld foreign=%ld\n", sorted ? 1 : 0, g_news,
              g_deletes, g_live_bytes, g_foreign);
  return 0;
}
