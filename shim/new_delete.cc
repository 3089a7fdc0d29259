// Every replaceable global operator new and delete (the 20 forms libstdc++ exports): plain,
// array, nothrow, sized, std::align_val_t, and their combinations. Throwing forms call the
// installed new_handler until it gives up, then throw std::bad_alloc, as the standard requires.
//
// libheapledger.so does not link the C++ library (C programs should not get it loaded), so the
// failure path finds libstdc++'s pieces at run time: any program that calls operator new has it.
#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "shim/alloc.h"
#include "tracker/write_signals.h"

using namespace heapledger::detail;

namespace {

template <class Fn>
Fn cxx_symbol(void* scope, const char* mangled) {
  return reinterpret_cast<Fn>(dlsym(scope, mangled));
}

std::new_handler current_new_handler() {
  auto get = cxx_symbol<std::new_handler (*)()>(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
  return get ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc() {
  if (auto raise = cxx_symbol<void (*)()>(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv")) raise();
  stderr_line("heapledger: operator new failed and std::bad_alloc cannot be thrown\n");
  std::abort();
}

// A nothrow new whose new_handler may throw: libstdc++'s own nothrow operator new (the next
// definition after ours) calls the throwing operator new — ours again — and catches what it
// throws, which this library, built without exception support, cannot do itself.
void* nothrow_through_libstdcxx(std::size_t size, std::size_t align, AllocKind kind) {
  bool array = kind == AllocKind::kNewArray || kind == AllocKind::kNewArrayAligned;
  if (align > kMinAlign) {
    using Fn = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&);
    auto fn = cxx_symbol<Fn>(RTLD_NEXT, array ? "_ZnamSt11align_val_tRKSt9nothrow_t"
                                              : "_ZnwmSt11align_val_tRKSt9nothrow_t");
    return fn ? fn(size, std::align_val_t(align), std::nothrow_t{}) : nullptr;
  }
  using Fn = void* (*)(std::size_t, const std::nothrow_t&);
  auto fn = cxx_symbol<Fn>(RTLD_NEXT, array ? "_ZnamRKSt9nothrow_t" : "_ZnwmRKSt9nothrow_t");
  return fn ? fn(size, std::nothrow_t{}) : nullptr;
}

HL_NOINLINE void* new_retry(std::size_t size, std::size_t align, AllocKind kind, bool nothrow) {
  if (nothrow && current_new_handler()) return nothrow_through_libstdcxx(size, align, kind);
  for (;;) {
    void* p = align > kMinAlign ? allocate_aligned(size, align, kind) : allocate(size, kind);
    if (p) return p;
    std::new_handler handler = current_new_handler();
    if (!handler) {
      if (nothrow) return nullptr;
      throw_bad_alloc();
    }
    handler();  // may throw; the exception passes through these frames (they have unwind tables)
  }
}

HL_NOINLINE void* new_slow(std::size_t size, AllocKind kind, bool nothrow, tracker::Caller caller) {
  void* p = allocate_slow(size, kind, caller);
  return HL_LIKELY(p != nullptr) ? p : new_retry(size, 0, kind, nothrow);
}

// As malloc's: the fast path calls nothing, everything else is one tail call.
HL_ALWAYS_INLINE void* new_impl(std::size_t size, AllocKind kind) {
  if (void* p = allocate_cached(size)) return p;
  return new_slow(size, kind, false, HL_CALLER());
}

HL_ALWAYS_INLINE void* new_nothrow(std::size_t size, AllocKind kind) {
  if (void* p = allocate_cached(size)) return p;
  return new_slow(size, kind, true, HL_CALLER());
}

HL_ALWAYS_INLINE void* new_aligned(std::size_t size, std::align_val_t al, AllocKind kind, bool nothrow) {
  auto align = static_cast<std::size_t>(al);
  if (HL_UNLIKELY(!is_pow2(align))) {  // undefined behaviour in the caller; fail cleanly
    if (nothrow) return nullptr;
    throw_bad_alloc();
  }
  void* p = allocate_aligned(size, align, kind);
  return HL_LIKELY(p != nullptr) ? p : new_retry(size, align, kind, nothrow);
}

constexpr AllocKind kNew = AllocKind::kNew;
constexpr AllocKind kNewArray = AllocKind::kNewArray;
constexpr AllocKind kNewAligned = AllocKind::kNewAligned;
constexpr AllocKind kNewArrayAligned = AllocKind::kNewArrayAligned;
using nothrow_t = std::nothrow_t;
using align_t = std::align_val_t;
constexpr std::size_t align(align_t a) { return static_cast<std::size_t>(a); }

}  // namespace

HL_EXPORT void* operator new(std::size_t n) { return new_impl(n, kNew); }
HL_EXPORT void* operator new[](std::size_t n) { return new_impl(n, kNewArray); }
HL_EXPORT void* operator new(std::size_t n, const nothrow_t&) noexcept { return new_nothrow(n, kNew); }
HL_EXPORT void* operator new[](std::size_t n, const nothrow_t&) noexcept { return new_nothrow(n, kNewArray); }
HL_EXPORT void* operator new(std::size_t n, align_t a) { return new_aligned(n, a, kNewAligned, false); }
HL_EXPORT void* operator new[](std::size_t n, align_t a) { return new_aligned(n, a, kNewArrayAligned, false); }
HL_EXPORT void* operator new(std::size_t n, align_t a, const nothrow_t&) noexcept {
  return new_aligned(n, a, kNewAligned, true);
}
HL_EXPORT void* operator new[](std::size_t n, align_t a, const nothrow_t&) noexcept {
  return new_aligned(n, a, kNewArrayAligned, true);
}

HL_EXPORT void operator delete(void* p) noexcept { deallocate(p, kNew); }
HL_EXPORT void operator delete[](void* p) noexcept { deallocate(p, kNewArray); }
HL_EXPORT void operator delete(void* p, const nothrow_t&) noexcept { deallocate(p, kNew); }
HL_EXPORT void operator delete[](void* p, const nothrow_t&) noexcept { deallocate(p, kNewArray); }
HL_EXPORT void operator delete(void* p, std::size_t n) noexcept { deallocate(p, kNew, n); }
HL_EXPORT void operator delete[](void* p, std::size_t n) noexcept { deallocate(p, kNewArray, n); }
HL_EXPORT void operator delete(void* p, align_t a) noexcept { deallocate(p, kNewAligned, tracker::kNoSize, align(a)); }
HL_EXPORT void operator delete[](void* p, align_t a) noexcept { deallocate(p, kNewArrayAligned, tracker::kNoSize, align(a)); }
HL_EXPORT void operator delete(void* p, align_t a, const nothrow_t&) noexcept {
  deallocate(p, kNewAligned, tracker::kNoSize, align(a));
}
HL_EXPORT void operator delete[](void* p, align_t a, const nothrow_t&) noexcept {
  deallocate(p, kNewArrayAligned, tracker::kNoSize, align(a));
}
HL_EXPORT void operator delete(void* p, std::size_t n, align_t a) noexcept {
  deallocate(p, kNewAligned, n, align(a));
}
HL_EXPORT void operator delete[](void* p, std::size_t n, align_t a) noexcept {
  deallocate(p, kNewArrayAligned, n, align(a));
}
