// Which family of entry point produced or released a block. The tracker stores it per block
// (misuse checks compare the two ends); nothing else about the entry point reaches the tracker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace heapledger::detail {

enum class AllocKind : std::uint8_t {
  kMalloc = 0,        // malloc, calloc, realloc, reallocarray, the __libc_ aliases
  kAligned = 1,       // memalign, posix_memalign, aligned_alloc, valloc, pvalloc
  kNew = 2,           // operator new
  kNewArray = 3,      // operator new[]
  kNewAligned = 4,    // operator new(std::align_val_t)
  kNewArrayAligned = 5,
  // Allocated while the tracker itself ran (libunwind, the dynamic linker loading the runtime,
  // the report writers). Kept in the ledger so the leak scan can follow pointers through it, but
  // never counted or reported.
  kInternal = 15,
};

constexpr const char* alloc_kind_name(AllocKind k) {
  constexpr const char* kNames[] = {"malloc", "aligned", "new", "new[]", "new(align)", "new[](align)"};
  return k == AllocKind::kInternal ? "internal" : kNames[static_cast<unsigned>(k)];
}

// A mismatched free's detail when the families differ; the report names both ends instead.
inline constexpr const char kWrongFamily[] = "released through the wrong family";
// The same for a block of operator new's passed to realloc ("allocated with new[], passed to
// realloc").
inline constexpr const char kSizedDeleteDiffers[] = "sized delete with a different size";
inline constexpr const char kReallocOfWrongFamily[] = "passed to realloc from the wrong family";
// An invalid free near a live block that was a realloc's: the report names where it points, then
// this ("8 bytes inside a 100-byte block at 0x..., passed to realloc").
inline constexpr const char kPassedToRealloc[] = "passed to realloc";

// The calls of each family, as a report names them ("allocated with new[], released with free").
constexpr const char* alloc_call_name(AllocKind k) {
  constexpr const char* kNames[] = {"malloc", "memalign", "new", "new[]", "new(align_val_t)", "new[](align_val_t)"};
  return static_cast<unsigned>(k) < 6 ? kNames[static_cast<unsigned>(k)] : "?";
}
constexpr const char* release_call_name(AllocKind k) {
  constexpr const char* kNames[] = {"free", "free", "delete", "delete[]", "delete(align_val_t)", "delete[](align_val_t)"};
  return static_cast<unsigned>(k) < 6 ? kNames[static_cast<unsigned>(k)] : "?";
}

// A mismatched free's detail as the report gives it: both ends named where the families differ
// ("allocated with new[], released with free"; "allocated with new[], passed to realloc"), else
// detail itself. Written into buf (no heap: also for the line on_error=abort writes at once).
// Compared by text: the reporter module has copies of its own of the constants above.
// A sized delete's says both sizes where they are known (block_size 0: not).
inline const char* mismatch_detail(const char* detail, AllocKind allocated, AllocKind released,
                                   char* buf, std::size_t size, std::uint64_t block_size = 0,
                                   std::uint64_t released_size = 0) {
  if (!detail) return "";
  if (!std::strcmp(detail, kSizedDeleteDiffers) && block_size != 0) {
    std::snprintf(buf, size, "sized delete of %llu bytes for a %llu-byte block",
                  static_cast<unsigned long long>(released_size),
                  static_cast<unsigned long long>(block_size));
    return buf;
  }
  if (allocated == AllocKind::kInternal) return detail;
  if (!std::strcmp(detail, kWrongFamily) && released != AllocKind::kInternal)
    std::snprintf(buf, size, "allocated with %s, released with %s", alloc_call_name(allocated),
                  release_call_name(released));
  else if (!std::strcmp(detail, kReallocOfWrongFamily))
    std::snprintf(buf, size, "allocated with %s, passed to realloc", alloc_call_name(allocated));
  else
    return detail;
  return buf;
}

}  // namespace heapledger::detail
