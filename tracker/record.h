// One live block's record, packed into two words.
#pragma once

#include <cstdint>

#include "tracker/alloc_kind.h"

namespace heapledger::detail {

// Size 40 bits (1 TiB), kind 4, thread 19 and a set top bit, so that the first word of a record
// is never zero (tables use zero for "no block"); time in microseconds since start 40 bits
// (12 days), stack id 24 bits.
class Record {
 public:
  Record() = default;
  Record(std::uint64_t size, AllocKind kind, std::uint32_t thread, std::uint64_t time_us,
         std::uint32_t stack)
      : a_((size & kSizeMask) | std::uint64_t{static_cast<std::uint8_t>(kind)} << 40 |
           std::uint64_t{thread & kThreadMask} << 44 | kPresent),
        b_((time_us & kTimeMask) | std::uint64_t{stack} << 40) {}

  std::uint64_t size() const { return a_ & kSizeMask; }
  AllocKind kind() const { return static_cast<AllocKind>((a_ >> 40) & 0xF); }
  std::uint32_t thread() const { return static_cast<std::uint32_t>(a_ >> 44) & kThreadMask; }
  std::uint64_t time_us() const { return b_ & kTimeMask; }
  std::uint32_t stack() const { return static_cast<std::uint32_t>(b_ >> 40); }

  // The two words, for tables that keep records in atomics. first_word() is never zero.
  std::uint64_t first_word() const { return a_; }
  std::uint64_t second_word() const { return b_; }
  // Whether a table's first word is a record's (else: zero, or something else kept in its place).
  static constexpr bool holds_record(std::uint64_t first) { return (first & kPresent) != 0; }
  static Record from_words(std::uint64_t first, std::uint64_t second) {
    Record r;
    r.a_ = first;
    r.b_ = second;
    return r;
  }

  static constexpr std::uint64_t kMaxSize = (std::uint64_t{1} << 40) - 1;
  static constexpr std::uint32_t kMaxStack = (1u << 24) - 1;
  static constexpr std::uint32_t kThreadMask = (1u << 19) - 1;  // thread numbers wrap here

 private:
  static constexpr std::uint64_t kSizeMask = kMaxSize;
  static constexpr std::uint64_t kTimeMask = (std::uint64_t{1} << 40) - 1;  // kSiteTimeLimitUs - 1
  static constexpr std::uint64_t kPresent = std::uint64_t{1} << 63;
  std::uint64_t a_ = 0;
  std::uint64_t b_ = 0;
};
static_assert(sizeof(Record) == 16);

}  // namespace heapledger::detail
