// Every replaceable global operator new and delete (the 20 forms libstdc++ exports): plain,
// array, nothrow, sized, std::align_val_t, and their combinations. Throwing forms call the
// installed new_handler until it gives up, then throw std::bad_alloc, as the standard requires.
//
// libheapledger.so does not link the C++ library (C programs should not get it loaded), so the
// failure path finds libstdc++'s pieces at run time: any program that calls operator new has it.
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "shim/alloc.h"
#include "shim/kernel_call.h"
#include "shim/program_operators.h"
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

// The sixteen forms libstdc++ defines by calling another operator (see program_operators.h),
// each with the operators its definition reaches: the one it calls, and the one that one calls.
enum Derived : unsigned {
  kNewArrayForm,
  kNewNothrowForm,
  kNewArrayNothrowForm,
  kNewArrayAlignedForm,
  kNewAlignedNothrowForm,
  kNewArrayAlignedNothrowForm,
  kDeleteArrayForm,
  kDeleteNothrowForm,
  kDeleteArrayNothrowForm,
  kDeleteSizedForm,
  kDeleteArraySizedForm,
  kDeleteArrayAlignedForm,
  kDeleteAlignedNothrowForm,
  kDeleteArrayAlignedNothrowForm,
  kDeleteSizedAlignedForm,
  kDeleteArraySizedAlignedForm,
  kDerivedForms
};
struct DerivedForm {
  const char* name;
  const char* reaches[2];
};
constexpr const char* kNewName = "_Znwm";
constexpr const char* kNewArrayName = "_Znam";
constexpr const char* kNewAlignedName = "_ZnwmSt11align_val_t";
constexpr const char* kNewArrayAlignedName = "_ZnamSt11align_val_t";
constexpr const char* kDeleteName = "_ZdlPv";
constexpr const char* kDeleteArrayName = "_ZdaPv";
constexpr const char* kDeleteAlignedName = "_ZdlPvSt11align_val_t";
constexpr const char* kDeleteArrayAlignedName = "_ZdaPvSt11align_val_t";
constexpr DerivedForm kDerived[kDerivedForms] = {
    {kNewArrayName, {kNewName, nullptr}},
    {"_ZnwmRKSt9nothrow_t", {kNewName, nullptr}},
    {"_ZnamRKSt9nothrow_t", {kNewArrayName, kNewName}},
    {kNewArrayAlignedName, {kNewAlignedName, nullptr}},
    {"_ZnwmSt11align_val_tRKSt9nothrow_t", {kNewAlignedName, nullptr}},
    {"_ZnamSt11align_val_tRKSt9nothrow_t", {kNewArrayAlignedName, kNewAlignedName}},
    {kDeleteArrayName, {kDeleteName, nullptr}},
    {"_ZdlPvRKSt9nothrow_t", {kDeleteName, nullptr}},
    {"_ZdaPvRKSt9nothrow_t", {kDeleteArrayName, kDeleteName}},
    {"_ZdlPvm", {kDeleteName, nullptr}},
    {"_ZdaPvm", {kDeleteArrayName, kDeleteName}},
    {kDeleteArrayAlignedName, {kDeleteAlignedName, nullptr}},
    {"_ZdlPvSt11align_val_tRKSt9nothrow_t", {kDeleteAlignedName, nullptr}},
    {"_ZdaPvSt11align_val_tRKSt9nothrow_t", {kDeleteArrayAlignedName, kDeleteAlignedName}},
    {"_ZdlPvmSt11align_val_t", {kDeleteAlignedName, nullptr}},
    {"_ZdaPvmSt11align_val_t", {kDeleteArrayAlignedName, kDeleteAlignedName}},
};

// Whether the forms that reach the program's operators go through libstdc++'s: decided at the
// first call of any of the sixteen (or at the tracker's start, if that comes first). Not in the
// library's constructor: the constructors of the program's C++ libraries run before it (they come
// before ours in the initialisation order), and their static objects' new[] and sized deletes took
// heapledger's forms, then gave their blocks to the program's delete once forwarding was on (a
// review's: a crash, and false invalid frees). Operators are called only from C++ code, so only
// once the dynamic linker has relocated everything: dlsym works.
enum class Forwarding : std::uint8_t { kUnknown, kDeciding, kNone, kSome };
constinit std::atomic<Forwarding> g_forwarding{Forwarding::kUnknown};
constinit std::atomic<void*> g_libstdcxx[kDerivedForms] = {};

// The addresses this object's code and data take: where its ELF header lies (the linker's
// __ehdr_start, as loaded) to the end of its last loadable segment.
struct Span {
  std::uintptr_t base = 0, end = 0;
  bool holds(const void* p) const {
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    return at >= base && at < end;
  }
};

extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

Span our_span() {
  Span ours;
  ours.base = reinterpret_cast<std::uintptr_t>(&__ehdr_start);
  const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(ours.base + __ehdr_start.e_phoff);
  ours.end = ours.base;
  for (unsigned i = 0; i < __ehdr_start.e_phnum; ++i)
    if (ph[i].p_type == PT_LOAD && ours.base + ph[i].p_vaddr + ph[i].p_memsz > ours.end)
      ours.end = ours.base + ph[i].p_vaddr + ph[i].p_memsz;
  return ours;
}

// Whether the definition the dynamic linker binds `name` to is the program's: not ours, and not
// a non-PIE executable's canonical PLT entry for ours (an undefined symbol there, which dlsym
// names all the same when the executable takes the operator's address; a review's). Ours is told
// by address, without dladdr: glibc's searches the object's symbols one by one, and the forty-odd
// calls at start took 12 us of every process's (perf, /bin/true under track=0).
bool programs(const char* name, const Span& ours) {
  void* found = dlsym(RTLD_DEFAULT, name);
  if (!found || ours.holds(found)) return false;
  Dl_info info;
  void* entry = nullptr;  // the symbol's ElfW(Sym)
  if (!dladdr1(found, &info, &entry, RTLD_DL_SYMENT)) return false;
  return !(entry && static_cast<const ElfW(Sym)*>(entry)->st_shndx == SHN_UNDEF);
}

void look_up_forwarding() {
  const Span ours = our_span();
  bool some = false;
  for (unsigned f = 0; f < kDerivedForms; ++f) {
    const DerivedForm& form = kDerived[f];
    bool reaches_programs = false;
    for (const char* name : form.reaches)
      reaches_programs = reaches_programs || (name && programs(name, ours));
    if (!reaches_programs) continue;
    // The next definition after ours: libstdc++'s (none where the program carries the C++
    // library statically, and then nothing of it calls ours).
    if (void* next = dlsym(RTLD_NEXT, form.name)) {
      g_libstdcxx[f].store(next, std::memory_order_relaxed);
      some = true;
    }
  }
  g_forwarding.store(some ? Forwarding::kSome : Forwarding::kNone, std::memory_order_release);
}

constinit std::atomic<pid_t> g_decider{0};                 // the process deciding (see below)
constinit thread_local bool tl_waited_out HL_TLS = false;  // this thread stopped waiting once

// Decides, or waits for the thread deciding: a block its form served meanwhile could reach the
// program's delete later. Not for good: that thread may be waiting in dlsym for the dynamic
// linker's lock, held by this one (a constructor run by dlopen); after ~50 ms this call goes on
// with heapledger's form, and this thread waits no more. A child forked while another thread
// decided decides again.
HL_NOINLINE Forwarding decide_forwarding() {
  for (;;) {
    Forwarding seen = Forwarding::kUnknown;
    if (g_forwarding.compare_exchange_strong(seen, Forwarding::kDeciding,
                                             std::memory_order_acq_rel)) {
      g_decider.store(getpid(), std::memory_order_relaxed);
      look_up_forwarding();
      return g_forwarding.load(std::memory_order_acquire);
    }
    if (seen != Forwarding::kDeciding) return seen;
    const pid_t decider = g_decider.load(std::memory_order_relaxed);
    if (decider != 0 && decider != getpid()) {  // a fork's child: nobody decides here
      g_forwarding.compare_exchange_strong(seen, Forwarding::kUnknown, std::memory_order_acq_rel);
      continue;
    }
    for (int i = 0; !tl_waited_out && seen == Forwarding::kDeciding; ++i) {
      if (i == 50'000) tl_waited_out = true;
      os::yield_cpu();
      seen = g_forwarding.load(std::memory_order_acquire);
    }
    return seen;
  }
}

// libstdc++'s definition of form, where it stands in for ours; null nearly always (one load).
template <class Fn>
HL_ALWAYS_INLINE Fn through_libstdcxx(Derived form) {
  Forwarding now = g_forwarding.load(std::memory_order_acquire);
  if (HL_LIKELY(now == Forwarding::kNone)) return nullptr;
  if (HL_UNLIKELY(now != Forwarding::kSome) && decide_forwarding() != Forwarding::kSome)
    return nullptr;
  return reinterpret_cast<Fn>(g_libstdcxx[form].load(std::memory_order_relaxed));
}

constexpr AllocKind kNew = AllocKind::kNew;
constexpr AllocKind kNewArray = AllocKind::kNewArray;
constexpr AllocKind kNewAligned = AllocKind::kNewAligned;
constexpr AllocKind kNewArrayAligned = AllocKind::kNewArrayAligned;
using nothrow_t = std::nothrow_t;
using align_t = std::align_val_t;
constexpr std::size_t align(align_t a) { return static_cast<std::size_t>(a); }

}  // namespace

namespace heapledger::detail::program_operators {

bool take() {
  if (g_forwarding.load(std::memory_order_acquire) == Forwarding::kUnknown) decide_forwarding();
  const Span ours = our_span();
  static constexpr const char* kBase[] = {kNewName, kNewAlignedName, kDeleteName,
                                          kDeleteAlignedName};
  for (const char* name : kBase)
    if (programs(name, ours)) return true;
  for (const DerivedForm& form : kDerived)
    if (programs(form.name, ours)) return true;
  return false;
}

}  // namespace heapledger::detail::program_operators

HL_EXPORT void* operator new(std::size_t n) { return new_impl(n, kNew); }
HL_EXPORT void* operator new[](std::size_t n) {
  if (auto fn = through_libstdcxx<void* (*)(std::size_t)>(kNewArrayForm)) return fn(n);
  return new_impl(n, kNewArray);
}
HL_EXPORT void* operator new(std::size_t n, const nothrow_t& nt) noexcept {
  if (auto fn = through_libstdcxx<void* (*)(std::size_t, const nothrow_t&)>(kNewNothrowForm))
    return fn(n, nt);
  return new_nothrow(n, kNew);
}
HL_EXPORT void* operator new[](std::size_t n, const nothrow_t& nt) noexcept {
  if (auto fn = through_libstdcxx<void* (*)(std::size_t, const nothrow_t&)>(kNewArrayNothrowForm))
    return fn(n, nt);
  return new_nothrow(n, kNewArray);
}
HL_EXPORT void* operator new(std::size_t n, align_t a) { return new_aligned(n, a, kNewAligned, false); }
HL_EXPORT void* operator new[](std::size_t n, align_t a) {
  if (auto fn = through_libstdcxx<void* (*)(std::size_t, align_t)>(kNewArrayAlignedForm))
    return fn(n, a);
  return new_aligned(n, a, kNewArrayAligned, false);
}
HL_EXPORT void* operator new(std::size_t n, align_t a, const nothrow_t& nt) noexcept {
  using Fn = void* (*)(std::size_t, align_t, const nothrow_t&);
  if (auto fn = through_libstdcxx<Fn>(kNewAlignedNothrowForm)) return fn(n, a, nt);
  return new_aligned(n, a, kNewAligned, true);
}
HL_EXPORT void* operator new[](std::size_t n, align_t a, const nothrow_t& nt) noexcept {
  using Fn = void* (*)(std::size_t, align_t, const nothrow_t&);
  if (auto fn = through_libstdcxx<Fn>(kNewArrayAlignedNothrowForm)) return fn(n, a, nt);
  return new_aligned(n, a, kNewArrayAligned, true);
}

HL_EXPORT void operator delete(void* p) noexcept { deallocate(p, kNew); }
HL_EXPORT void operator delete[](void* p) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*)>(kDeleteArrayForm)) return fn(p);
  deallocate(p, kNewArray);
}
HL_EXPORT void operator delete(void* p, const nothrow_t& nt) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, const nothrow_t&)>(kDeleteNothrowForm))
    return fn(p, nt);
  deallocate(p, kNew);
}
HL_EXPORT void operator delete[](void* p, const nothrow_t& nt) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, const nothrow_t&)>(kDeleteArrayNothrowForm))
    return fn(p, nt);
  deallocate(p, kNewArray);
}
HL_EXPORT void operator delete(void* p, std::size_t n) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, std::size_t)>(kDeleteSizedForm)) return fn(p, n);
  deallocate(p, kNew, n);
}
HL_EXPORT void operator delete[](void* p, std::size_t n) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, std::size_t)>(kDeleteArraySizedForm))
    return fn(p, n);
  deallocate(p, kNewArray, n);
}
HL_EXPORT void operator delete(void* p, align_t a) noexcept { deallocate(p, kNewAligned, tracker::kNoSize, align(a)); }
HL_EXPORT void operator delete[](void* p, align_t a) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, align_t)>(kDeleteArrayAlignedForm))
    return fn(p, a);
  deallocate(p, kNewArrayAligned, tracker::kNoSize, align(a));
}
HL_EXPORT void operator delete(void* p, align_t a, const nothrow_t& nt) noexcept {
  using Fn = void (*)(void*, align_t, const nothrow_t&);
  if (auto fn = through_libstdcxx<Fn>(kDeleteAlignedNothrowForm)) return fn(p, a, nt);
  deallocate(p, kNewAligned, tracker::kNoSize, align(a));
}
HL_EXPORT void operator delete[](void* p, align_t a, const nothrow_t& nt) noexcept {
  using Fn = void (*)(void*, align_t, const nothrow_t&);
  if (auto fn = through_libstdcxx<Fn>(kDeleteArrayAlignedNothrowForm)) return fn(p, a, nt);
  deallocate(p, kNewArrayAligned, tracker::kNoSize, align(a));
}
HL_EXPORT void operator delete(void* p, std::size_t n, align_t a) noexcept {
  if (auto fn = through_libstdcxx<void (*)(void*, std::size_t, align_t)>(kDeleteSizedAlignedForm))
    return fn(p, n, a);
  deallocate(p, kNewAligned, n, align(a));
}
HL_EXPORT void operator delete[](void* p, std::size_t n, align_t a) noexcept {
  if (auto fn =
          through_libstdcxx<void (*)(void*, std::size_t, align_t)>(kDeleteArraySizedAlignedForm))
    return fn(p, n, a);
  deallocate(p, kNewArrayAligned, n, align(a));
}
