// Checks operator new/delete semantics: the new_handler is called before std::bad_alloc is
// thrown, nothrow forms return null, aligned and sized forms work. Exit 0 only if all pass.
#include <cstdint>
#include <cstdio>
#include <new>

#include "hl_sink.h"

static int failures;
static int handler_calls;

static void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

static void counting_handler() {
  ++handler_calls;
  std::set_new_handler(nullptr);  // the next failure throws
}

static volatile std::size_t huge = SIZE_MAX / 2;

template <typename F>
static bool throws_bad_alloc(F f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    return true;
  }
  return false;
}

int main() {
  std::set_new_handler(counting_handler);
  check(throws_bad_alloc([] { hl_sink(::operator new(huge)); }) && handler_calls == 1,
        "operator new(huge) calls the new_handler, then throws bad_alloc");
  check(throws_bad_alloc([] { hl_sink(::operator new[](huge)); }), "operator new[](huge) throws");
  check(throws_bad_alloc([] { hl_sink(::operator new(huge, std::align_val_t(64))); }),
        "aligned operator new(huge) throws");
  check(::operator new(huge, std::nothrow) == nullptr, "nothrow new(huge) returns null");
  check(::operator new[](huge, std::nothrow) == nullptr, "nothrow new[](huge) returns null");
  check(::operator new(huge, std::align_val_t(64), std::nothrow) == nullptr,
        "nothrow aligned new(huge) returns null");

  void* p = ::operator new(0);
  check(p != nullptr, "operator new(0) returns a pointer");
  ::operator delete(p);
  p = ::operator new(40);
  hl_sink(p);
  ::operator delete(p, 40);
  p = ::operator new[](40);
  hl_sink(p);
  ::operator delete[](p, 40);
  p = ::operator new(200, std::align_val_t(512));
  check(reinterpret_cast<std::uintptr_t>(p) % 512 == 0, "aligned new(200, 512)");
  ::operator delete(p, 200, std::align_val_t(512));
  p = ::operator new[](200, std::align_val_t(128), std::nothrow);
  check(p && reinterpret_cast<std::uintptr_t>(p) % 128 == 0, "nothrow aligned new[](200, 128)");
  ::operator delete[](p, std::align_val_t(128), std::nothrow);
  ::operator delete(nullptr);
  ::operator delete[](nullptr);
  std::printf("misc_new: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
