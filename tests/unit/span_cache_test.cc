// SpanCache: which kept mapping a request takes, and what the cache gives back to make room.
#include "shim/span_cache.h"

#include <gtest/gtest.h>

namespace heapledger::detail::pool {
namespace {

constexpr std::size_t kKiB = 1024;
using Out = Span[SpanCache::kEntries + 1];

Span span(std::uintptr_t start, std::size_t length) { return Span{start, length}; }

TEST(SpanCache, TakesTheSmallestSpanThatFits) {
  SpanCache c;
  Out out;
  EXPECT_EQ(c.put(span(0x100000, 256 * kKiB), out), 0u);
  EXPECT_EQ(c.put(span(0x200000, 64 * kKiB), out), 0u);
  EXPECT_EQ(c.put(span(0x300000, 128 * kKiB), out), 0u);
  EXPECT_EQ(c.bytes(), 448 * kKiB);
  Span s = c.take(100 * kKiB);
  EXPECT_EQ(s.start, 0x300000u);
  EXPECT_EQ(s.length, 128 * kKiB);
  s = c.take(64 * kKiB);  // an exact fit
  EXPECT_EQ(s.start, 0x200000u);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.bytes(), 256 * kKiB);
  EXPECT_EQ(c.take(257 * kKiB).start, 0u);  // nothing large enough
  EXPECT_EQ(c.size(), 1u);
}

TEST(SpanCache, ARequestTakesAtMostEightTimesItsSize) {
  SpanCache c;
  Out out;
  c.put(span(0x100000, 512 * kKiB), out);
  EXPECT_EQ(c.take(60 * kKiB).start, 0u);  // 512 KiB > 8 x 60 KiB
  EXPECT_EQ(c.take(64 * kKiB).start, 0x100000u);
}

TEST(SpanCache, MakesRoomByGivingBackTheOldest) {
  SpanCache c;
  Out out;
  const std::size_t len = 4 * 1024 * kKiB;  // four fill the 16 MiB budget
  ASSERT_EQ(SpanCache::kBudget, 4 * len);
  for (std::uintptr_t i = 0; i < 4; ++i) EXPECT_EQ(c.put(span((i + 1) << 32, len), out), 0u);
  ASSERT_EQ(c.put(span(std::uintptr_t{5} << 32, len), out), 1u);
  EXPECT_EQ(out[0].start, std::uintptr_t{1} << 32);
  ASSERT_EQ(c.put(span(std::uintptr_t{6} << 32, 2 * len), out), 2u);
  EXPECT_EQ(out[0].start, std::uintptr_t{2} << 32);
  EXPECT_EQ(out[1].start, std::uintptr_t{3} << 32);
  EXPECT_EQ(c.bytes(), SpanCache::kBudget);
  Span kept[SpanCache::kEntries];
  ASSERT_EQ(c.copy(kept, SpanCache::kEntries), 3u);
  EXPECT_EQ(kept[0].start, std::uintptr_t{4} << 32);
  EXPECT_EQ(kept[2].start, std::uintptr_t{6} << 32);
}

TEST(SpanCache, GivesEverythingBack) {
  SpanCache c;
  Out out;
  c.put(span(0x100000, 64 * kKiB), out);
  c.put(span(0x200000, 128 * kKiB), out);
  Span all[SpanCache::kEntries];
  ASSERT_EQ(c.take_all(all), 2u);
  EXPECT_EQ(all[1].start, 0x200000u);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(c.take(64 * kKiB).start, 0u);
}

TEST(SpanCache, KeepsAtMostItsEntries) {
  SpanCache c;
  Out out;
  for (std::uintptr_t i = 0; i < SpanCache::kEntries; ++i)
    EXPECT_EQ(c.put(span((i + 1) << 32, 64 * kKiB), out), 0u);
  ASSERT_EQ(c.put(span(std::uintptr_t{99} << 32, 64 * kKiB), out), 1u);
  EXPECT_EQ(out[0].start, std::uintptr_t{1} << 32);
  EXPECT_EQ(c.size(), SpanCache::kEntries);
}

TEST(SpanCache, DoesNotKeepSpansLargerThanItsLimit) {
  SpanCache c;
  Out out;
  c.put(span(0x100000, 64 * kKiB), out);
  ASSERT_EQ(c.put(span(std::uintptr_t{1} << 32, SpanCache::kMaxSpan + 4 * kKiB), out), 1u);
  EXPECT_EQ(out[0].start, std::uintptr_t{1} << 32);  // itself, and nothing else given back
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.put(span(std::uintptr_t{2} << 32, SpanCache::kMaxSpan), out), 0u);
}

}  // namespace
}  // namespace heapledger::detail::pool
