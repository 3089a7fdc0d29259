// C++ aligned new: leaks one 192-byte alignas(64) Wide from leak_aligned_new() and one
// 512-byte array with 4096 alignment from leak_aligned_new_array(); frees others of each shape.
#include <cstdint>
#include <cstdio>
#include <new>

#include "hl_sink.h"

struct alignas(64) Wide {
  char bytes[192];
};
static_assert(sizeof(Wide) == 192);

static int failures;

static void expect_aligned(const void* p, std::size_t align) {
  if (reinterpret_cast<std::uintptr_t>(p) % align != 0) ++failures;
}

extern "C" __attribute__((noinline)) void leak_aligned_new() {
  Wide* w = new Wide{};
  expect_aligned(w, 64);
  hl_sink(w);
}

extern "C" __attribute__((noinline)) void leak_aligned_new_array() {
  void* p = ::operator new[](512, std::align_val_t(4096));
  expect_aligned(p, 4096);
  hl_sink(p);
}

extern "C" __attribute__((noinline)) void churn_aligned_new() {
  for (int i = 0; i < 50; ++i) {
    Wide* w = new Wide{};
    expect_aligned(w, 64);
    hl_sink(w);
    delete w;
    Wide* arr = new Wide[i + 1];
    expect_aligned(arr, 64);
    hl_sink(arr);
    delete[] arr;
    void* raw = ::operator new(100, std::align_val_t(1024));
    expect_aligned(raw, 1024);
    hl_sink(raw);
    ::operator delete(raw, 100, std::align_val_t(1024));
    void* nt = ::operator new(33, std::align_val_t(256), std::nothrow);
    expect_aligned(nt, 256);
    hl_sink(nt);
    ::operator delete(nt, std::align_val_t(256));
  }
}

int main() {
  churn_aligned_new();
  leak_aligned_new();
  leak_aligned_new_array();
  std::printf("leak_aligned_new: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
