// Size classes: 16-byte steps up to 128 bytes, then four classes per power of two up to 32 KiB
// (at most 25% internal waste, every class a multiple of 16 so every block is 16-byte aligned).
// Everything is constexpr: size -> class is one table load.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace heapledger::detail {

constexpr std::size_t kMinAlign = 16;
constexpr std::size_t kMaxSmallSize = 32 * 1024;
constexpr unsigned kLinearClasses = 8;     // 16, 32, ..., 128
constexpr unsigned kClassesPerDoubling = 4;
constexpr unsigned kNumClasses = kLinearClasses + kClassesPerDoubling * 8;  // 128 .. 32 KiB

constexpr std::array<std::uint32_t, kNumClasses> make_class_sizes() {
  std::array<std::uint32_t, kNumClasses> sizes{};
  unsigned i = 0;
  for (; i < kLinearClasses; ++i) sizes[i] = (i + 1) * 16;
  for (std::uint32_t base = 128; i < kNumClasses; base *= 2)
    for (unsigned step = 1; step <= kClassesPerDoubling; ++step) sizes[i++] = base + base / 4 * step;
  return sizes;
}
constexpr std::array<std::uint32_t, kNumClasses> kClassSize = make_class_sizes();
static_assert(kClassSize[kNumClasses - 1] == kMaxSmallSize);

constexpr std::size_t kLookupEntries = kMaxSmallSize / kMinAlign + 1;

constexpr std::array<std::uint8_t, kLookupEntries> make_class_lookup() {
  std::array<std::uint8_t, kLookupEntries> table{};
  unsigned cls = 0;
  for (std::size_t i = 0; i < kLookupEntries; ++i) {
    while (kClassSize[cls] < i * kMinAlign) ++cls;
    table[i] = static_cast<std::uint8_t>(cls);
  }
  return table;
}
constexpr std::array<std::uint8_t, kLookupEntries> kClassLookup = make_class_lookup();

// The class for a request of `size` bytes; size must be <= kMaxSmallSize.
constexpr unsigned size_class(std::size_t size) { return kClassLookup[(size + 15) / 16]; }

// The smallest class holding `size` bytes whose blocks are all `align`-aligned (align a power of
// two): blocks sit at multiples of the class size from a 64 KiB-aligned base, so a class whose
// size is a multiple of `align` is enough. Returns kNumClasses when no small class fits.
constexpr unsigned aligned_size_class(std::size_t size, std::size_t align) {
  std::size_t need = size < align ? align : size;
  if (need > kMaxSmallSize) return kNumClasses;
  for (unsigned cls = size_class(need); cls < kNumClasses; ++cls)
    if (kClassSize[cls] % align == 0) return cls;
  return kNumClasses;
}

// Where a class's first block sits in its region. Regions start on huge power-of-two boundaries;
// without an offset the blocks every class uses most would share page offsets and cache sets
// across all 40 regions. The offset is a multiple of the class's largest power-of-two divisor,
// so the alignment promise of aligned_size_class still holds.
constexpr std::size_t class_offset(unsigned cls) {
  std::size_t size = kClassSize[cls];
  std::size_t lowbit = size & (~size + 1);
  std::size_t color = (cls * 211u % 512u) * 4096u + (cls * 11u % 64u) * 64u;  // within 2 MiB
  return (color + lowbit - 1) / lowbit * lowbit;
}

// Each class's first blocks come from its 64 KiB slice of the starter zone, where the slices of
// all classes lie side by side (see pool.h, Part); its first block sits a different cache line
// into the slice for each class, as far as its alignment allows, or at the slice's start where
// that would leave room for fewer than two blocks.
constexpr unsigned kStarterShift = 16;
constexpr std::size_t kStarterSlice = std::size_t{1} << kStarterShift;
constexpr std::size_t starter_offset(unsigned cls) {
  const std::size_t size = kClassSize[cls], lowbit = size & (~size + 1);
  const std::size_t color = (cls * 11u % 64u) * 64u;
  const std::size_t offset = (color + lowbit - 1) / lowbit * lowbit;
  return (kStarterSlice - offset) / size >= 2 ? offset : 0;
}

// A block's number in its class from its offset past the class's first block, without a
// division: exact when rel is a multiple of the class size (rel >> 4 < 2^32, so up to a 64 GiB
// range); anything else comes out as a number whose block does not start at rel.
constexpr std::array<std::uint64_t, kNumClasses> make_class_reciprocals() {
  std::array<std::uint64_t, kNumClasses> r{};
  for (unsigned c = 0; c < kNumClasses; ++c) r[c] = ((std::uint64_t{1} << 32) + kClassSize[c] / 16 - 1) / (kClassSize[c] / 16);
  return r;
}
constexpr std::array<std::uint64_t, kNumClasses> kClassReciprocal = make_class_reciprocals();
constexpr std::uint64_t block_number(std::uint64_t rel, unsigned cls) { return ((rel >> 4) * kClassReciprocal[cls]) >> 32; }

// Blocks moved between a thread cache and the central lists at once: ~32 KiB worth, 2..64 blocks.
constexpr std::uint32_t batch_size(unsigned cls) {
  std::uint32_t n = 32 * 1024 / kClassSize[cls];
  return n < 2 ? 2 : (n > 64 ? 64 : n);
}

}  // namespace heapledger::detail
