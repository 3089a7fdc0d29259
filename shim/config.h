// Compiler hints and attributes used across heapledger. Defined once here (snmalloc style) so the
// fast/slow path splits read the same everywhere.
#pragma once

#define HL_LIKELY(x) __builtin_expect(!!(x), 1)
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HL_NOINLINE __attribute__((noinline))
#define HL_ALWAYS_INLINE inline __attribute__((always_inline))
#define HL_COLD __attribute__((cold, noinline))
#define HL_EXPORT __attribute__((visibility("default")))
#define HL_TLS __attribute__((tls_model("initial-exec")))

// clang thread-safety annotations; no-ops elsewhere.
#if defined(__clang__)
#define HL_GUARDED_BY(x) __attribute__((guarded_by(x)))
#define HL_CAPABILITY(x) __attribute__((capability(x)))
#define HL_ACQUIRE(...) __attribute__((acquire_capability(__VA_ARGS__)))
#define HL_RELEASE(...) __attribute__((release_capability(__VA_ARGS__)))
#define HL_REQUIRES(...) __attribute__((requires_capability(__VA_ARGS__)))
#define HL_NO_THREAD_SAFETY_ANALYSIS __attribute__((no_thread_safety_analysis))
#else
#define HL_GUARDED_BY(x)
#define HL_CAPABILITY(x)
#define HL_ACQUIRE(...)
#define HL_RELEASE(...)
#define HL_REQUIRES(...)
#define HL_NO_THREAD_SAFETY_ANALYSIS
#endif
