// Size-class table: every size maps to a class that holds it with bounded waste, and aligned
// lookups give classes whose blocks are all aligned.
#include "shim/size_classes.h"

#include <gtest/gtest.h>

namespace heapledger::detail {
namespace {

TEST(SizeClasses, EveryClassIsA16ByteMultipleAndIncreasing) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(kClassSize[c] % kMinAlign, 0u) << c;
    if (c > 0) {
      EXPECT_GT(kClassSize[c], kClassSize[c - 1]) << c;
    }
  }
  EXPECT_EQ(kClassSize[0], 16u);
  EXPECT_EQ(kClassSize[kNumClasses - 1], kMaxSmallSize);
  EXPECT_EQ(kNumClasses, 40u);
}

TEST(SizeClasses, EverySizeFitsWithAtMostAQuarterWasted) {
  for (std::size_t size = 0; size <= kMaxSmallSize; ++size) {
    unsigned c = size_class(size);
    ASSERT_LT(c, kNumClasses);
    ASSERT_GE(kClassSize[c], size) << size;
    if (c > 0) {
      ASSERT_LT(kClassSize[c - 1], size) << "not the smallest class for " << size;
    }
    if (size > 128) {
      ASSERT_LE(kClassSize[c], size + size / 4 + 16) << size;
    }
  }
}

TEST(SizeClasses, SpotValues) {
  EXPECT_EQ(kClassSize[size_class(0)], 16u);
  EXPECT_EQ(kClassSize[size_class(1)], 16u);
  EXPECT_EQ(kClassSize[size_class(17)], 32u);
  EXPECT_EQ(kClassSize[size_class(129)], 160u);
  EXPECT_EQ(kClassSize[size_class(1000)], 1024u);
  EXPECT_EQ(kClassSize[size_class(1025)], 1280u);
  EXPECT_EQ(kClassSize[size_class(32767)], 32768u);
}

TEST(SizeClasses, AlignedClassesAreMultiplesOfTheAlignment) {
  for (std::size_t align = 32; align <= kMaxSmallSize; align *= 2) {
    for (std::size_t size : {std::size_t{1}, std::size_t{100}, align - 1, align, align + 1, std::size_t{5000}}) {
      unsigned c = aligned_size_class(size, align);
      if (size > kMaxSmallSize || (align > size ? align : size) > kMaxSmallSize) continue;
      ASSERT_LT(c, kNumClasses) << size << "/" << align;
      EXPECT_EQ(kClassSize[c] % align, 0u) << size << "/" << align;
      EXPECT_GE(kClassSize[c], size);
    }
  }
  EXPECT_EQ(aligned_size_class(10, 65536), kNumClasses);  // large path
  EXPECT_EQ(kClassSize[aligned_size_class(600, 256)], 768u);
}

TEST(SizeClasses, BatchSizesAreBounded) {
  EXPECT_EQ(batch_size(0), 64u);
  EXPECT_EQ(batch_size(kNumClasses - 1), 2u);
  for (unsigned c = 0; c < kNumClasses; ++c) {
    EXPECT_GE(batch_size(c), 2u);
    EXPECT_LE(batch_size(c), 64u);
  }
}

// The pools' central lists and the ledger's record slots number blocks without a division: exact
// for every block start of a 64 GiB class range, never a block start for an address inside one.
TEST(SizeClasses, BlockNumbersAreExactForBlockStartsOnly) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const std::uint64_t size = kClassSize[c], last = ((std::uint64_t{1} << 36) - 1) / size;
    for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{63}, std::uint64_t{12345},
                            last / 2, last - 1, last}) {
      ASSERT_EQ(block_number(n * size, c), n) << "class " << c << " block " << n;
      for (std::uint64_t inside : {std::uint64_t{16}, size / 2 / 16 * 16, size - 16}) {
        if (inside == 0 || inside >= size) continue;
        ASSERT_NE(block_number(n * size + inside, c) * size, n * size + inside) << c << " " << n << " " << inside;
      }
    }
  }
}

}  // namespace
}  // namespace heapledger::detail
