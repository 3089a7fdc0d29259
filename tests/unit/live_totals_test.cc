// LiveTotals: threads count in slots of their own below the peak, and the peak stays exact: an
// idle thread's unfolded changes are in it, a free kept in a slot never makes a peak of a block
// counted twice, and the totals settle to the exact sums.
#include "tracker/live_totals.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace heapledger::detail {
namespace {

// The call sites' shared counts, as the tracker's adjust_site keeps them.
constexpr int kSites = 64;
std::atomic<std::int64_t> g_site_bytes[kSites], g_site_blocks[kSites];
void site_sink(std::uint32_t stack, std::int64_t bytes, std::int64_t blocks) {
  g_site_bytes[stack].fetch_add(bytes);
  g_site_blocks[stack].fetch_add(blocks);
}

// What the tracker does with the totals: the peak is the largest exact live total; with one
// thread making it (the tests below), each site's count at it is copied then.
struct Books {
  LiveTotals totals;
  std::atomic<std::int64_t> peak{0};
  std::int64_t site_at_peak[kSites] = {};

  Books() {
    totals.set_site_sink(site_sink);
    for (int i = 0; i < kSites; ++i) g_site_bytes[i] = g_site_blocks[i] = 0;
  }
  LiveTotals::Change alloc(LiveTotals::Slot* s, std::int64_t n, std::uint32_t site = 0) {
    const LiveTotals::Change c = totals.change(s, site, n, 1, peak.load(std::memory_order_relaxed));
    std::int64_t seen = peak.load(std::memory_order_relaxed);
    while (c.exact && c.live > seen) {
      if (peak.compare_exchange_weak(seen, c.live)) {
        for (int i = 0; i < kSites; ++i) site_at_peak[i] = g_site_bytes[i].load();
        break;
      }
    }
    return c;
  }
  void free(LiveTotals::Slot* s, std::int64_t n, std::uint32_t site = 0) {
    totals.change(s, site, -n, -1, peak.load(std::memory_order_relaxed));
  }
  // A peak of 1 MiB with nothing live after it: headroom for the slots.
  void peak_then_nothing(LiveTotals::Slot* s) {
    alloc(s, 1 << 20);
    free(s, 1 << 20);
  }
  std::int64_t live_bytes() {
    std::int64_t bytes, blocks;
    totals.settle(&bytes, &blocks);
    return bytes;
  }
};

// Slots get headroom only once the process has threads.
void become_multithreaded() {
  std::thread([] {}).join();
}

// A thread's slot, attached, with headroom reserved: churns until its changes stay in the slot.
void open_slot(Books& b, LiveTotals::Slot* s) {
  for (int i = 0; i < 4 * static_cast<int>(LiveTotals::kAskEvery); ++i) {
    b.alloc(s, 100);
    b.free(s, 100);
  }
  ASSERT_NE(s->word.load(), 0u) << "no headroom was reserved";
}

// A thread's slot, attached, under a peak of 1 MiB with nothing live, in a process with threads.
class LiveTotalsOneSlot : public ::testing::Test {
 protected:
  void SetUp() override {
    become_multithreaded();
    b.totals.attach(&s);
    b.peak_then_nothing(&s);
  }
  Books b;
  LiveTotals::Slot s;
};

TEST(LiveTotals, WithOneThreadEveryChangeIsExact) {
  Books b;
  LiveTotals::Slot s;
  b.totals.attach(&s);
  std::int64_t live = 0;
  for (int i = 1; i <= 100; ++i) {
    const LiveTotals::Change c = b.alloc(&s, i);
    live += i;
    EXPECT_TRUE(c.exact);
    EXPECT_EQ(c.live, live);
  }
  b.free(&s, 50);
  EXPECT_EQ(b.peak.load(), 5050);
  EXPECT_EQ(b.live_bytes(), 5000);
}

TEST_F(LiveTotalsOneSlot, BelowThePeakAThreadCountsInItsSlot) {
  open_slot(b, &s);
  const std::int64_t headroom = s.reserve.load();
  EXPECT_GE(headroom, LiveTotals::kMinReserve);
  EXPECT_LE(headroom, std::int64_t{1} << 18);  // a quarter of what is under the peak
  // Within its headroom: in the slot, and never a peak.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(b.alloc(&s, 100).exact);
  EXPECT_EQ(b.live_bytes(), 1000);  // settling folds the slot in
  EXPECT_EQ(s.word.load(), 0u);
  EXPECT_EQ(b.peak.load(), 1 << 20);
}

TEST_F(LiveTotalsOneSlot, AnAllocationPastItsHeadroomClosesTheSlot) {
  open_slot(b, &s);
  const std::int64_t headroom = s.reserve.load();
  b.alloc(&s, headroom + 1);
  EXPECT_EQ(b.live_bytes(), headroom + 1);
  EXPECT_EQ(b.peak.load(), 1 << 20);
}

// The reviews' case: threads that changed the totals in their slots and went idle. A new peak
// made by another thread counts what they hold, to the byte.
TEST(LiveTotals, IdleThreadsUnfoldedChangesAreInTheNextPeak) {
  become_multithreaded();
  Books b;
  LiveTotals::Slot main_slot;
  b.totals.attach(&main_slot);
  b.peak_then_nothing(&main_slot);

  constexpr int kThreads = 8;
  constexpr std::int64_t kHeld = 3840;
  std::vector<LiveTotals::Slot> slots(kThreads);
  std::atomic<int> open{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    b.totals.attach(&slots[t]);
    threads.emplace_back([&, t] {
      open_slot(b, &slots[t]);
      if (slots[t].word.load() != 0) ++open;
      b.alloc(&slots[t], kHeld, 7);  // held, in the slot, as the thread ends its work
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(open.load(), 0);
  EXPECT_EQ(b.totals.estimate(), kThreads * kHeld);  // the timeline's value: every slot read
  EXPECT_LT(g_site_bytes[7].load(), kThreads * kHeld);  // some of it in the slots' site entries
  // The main thread grows past the old peak, 4 KiB at a time.
  std::int64_t mine = 0;
  while (mine + kThreads * kHeld <= (1 << 20)) {
    b.alloc(nullptr, 4096, 1);
    mine += 4096;
  }
  EXPECT_EQ(b.peak.load(), mine + kThreads * kHeld);
  EXPECT_EQ(b.site_at_peak[7], kThreads * kHeld);  // the idle threads' site, whole at the peak
  EXPECT_EQ(b.site_at_peak[1], mine);
  std::int64_t bytes, blocks;
  b.totals.settle(&bytes, &blocks);
  EXPECT_EQ(bytes, mine + kThreads * kHeld);
  EXPECT_EQ(blocks, mine / 4096 + kThreads);
}

// A signal handler's change on its thread's slot while the thread is inside change() on it:
// never opens the slot (the interrupted compare-and-swap would meet a slot closed and opened
// again, the same word, with less headroom than it checked).
TEST_F(LiveTotalsOneSlot, AChangeInsideAnotherOnTheSameSlotNeverOpensIt) {
  b.live_bytes();  // closes every slot
  ASSERT_EQ(s.word.load(), 0u);
  s.countdown = 0;
  s.changing = true;  // as if the handler interrupted its thread in there
  b.free(&s, 0);
  b.alloc(&s, 100);
  EXPECT_EQ(s.word.load(), 0u);
  s.changing = false;
  b.alloc(&s, 100);
  EXPECT_NE(s.word.load(), 0u);
  EXPECT_EQ(b.live_bytes(), 200);
}

// A free kept in a slot while the block's allocation is in the shared total: the block must not
// count twice when another thread allocates right up to the peak.
TEST(LiveTotals, AFreeInASlotMakesNoPeakOfABlockCountedTwice) {
  become_multithreaded();
  Books b;
  b.peak_then_nothing(nullptr);
  LiveTotals::Slot a;
  b.totals.attach(&a);
  std::thread([&] {
    b.alloc(&a, 200 << 10);  // on the shared total: the slot has no headroom yet
    open_slot(b, &a);
    b.free(&a, 200 << 10);  // in the slot
  }).join();
  ASSERT_NE(a.word.load(), 0u);
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) b.alloc(nullptr, 1 << 10);  // 1000 KiB: under the peak
  }).join();
  EXPECT_EQ(b.peak.load(), 1 << 20);
  EXPECT_EQ(b.live_bytes(), 1000 << 10);
  b.alloc(nullptr, 25 << 10);  // 1025 KiB: a new peak, by 1 KiB
  EXPECT_EQ(b.peak.load(), 1025 << 10);
}

// Threads allocating and freeing at random, stopping together now and then: at every stop the
// settled totals and each thread's call site are the exact sums, and the peak is at least each of
// them and at most what the threads could have held at once.
TEST(LiveTotals, ManyThreadsSettleToTheExactSums) {
  become_multithreaded();
  constexpr int kThreads = 4, kRounds = 20, kOps = 5000;
  Books b;
  std::vector<LiveTotals::Slot> slots(kThreads);
  for (auto& s : slots) b.totals.attach(&s);
  std::vector<std::int64_t> live(kThreads, 0), most(kThreads, 0), count(kThreads, 0);
  std::vector<std::int64_t> settled;
  std::barrier stop(kThreads, [&]() noexcept {
    std::int64_t sum = 0, blocks = 0;
    for (int t = 0; t < kThreads; ++t) sum += live[t], blocks += count[t];
    std::int64_t got_bytes, got_blocks;
    b.totals.settle(&got_bytes, &got_blocks);
    EXPECT_EQ(got_bytes, sum);
    EXPECT_EQ(got_blocks, blocks);
    for (int t = 0; t < kThreads; ++t) {  // each thread's call site, its entries folded in
      EXPECT_EQ(g_site_bytes[t + 2].load(), live[t]);
      EXPECT_EQ(g_site_blocks[t + 2].load(), count[t]);
    }
    settled.push_back(sum);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::vector<std::int64_t> held;
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kOps; ++i) {
          if (held.empty() || rng() % 100 < 52) {
            const auto n = static_cast<std::int64_t>(16 + rng() % 2000);
            b.alloc(&slots[t], n, t + 2);
            held.push_back(n);
            live[t] += n;
            ++count[t];
          } else {
            const std::size_t k = rng() % held.size();
            b.free(&slots[t], held[k], t + 2);
            live[t] -= held[k];
            --count[t];
            held[k] = held.back();
            held.pop_back();
          }
          most[t] = std::max(most[t], live[t]);
        }
        stop.arrive_and_wait();
      }
    });
  for (auto& t : threads) t.join();
  std::int64_t bound = 0;
  for (std::int64_t m : most) bound += m;
  for (std::int64_t s : settled) EXPECT_GE(b.peak.load(), s);
  EXPECT_LE(b.peak.load(), bound);
  std::int64_t bytes, blocks;
  b.totals.settle(&bytes, &blocks);
  EXPECT_EQ(bytes, settled.back());
}

}  // namespace
}  // namespace heapledger::detail
