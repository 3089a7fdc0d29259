// Stack interning: identical stacks share an id, different ones never do, concurrent interning
// agrees, and each frame is resolved to its module once.
#include "tracker/stack_table.h"

#include <gtest/gtest.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "kernel_support.h"
#include "tracker/internal_alloc.h"
#include "tracker/modules.h"

namespace heapledger::detail {
namespace {

StackTable& table() {
  static ModuleMap* modules = new ModuleMap;
  static StackTable* t = [] {
    auto* s = new StackTable;
    EXPECT_TRUE(s->init(modules));
    return s;
  }();
  return *t;
}

TEST(StackTable, SameStackSameId) {
  std::uintptr_t a[] = {0x1000, 0x2000, 0x3000};
  std::uintptr_t b[] = {0x1000, 0x2000, 0x3001};
  std::uint32_t ida = table().intern(a, 3);
  EXPECT_NE(ida, StackTable::kEmptyStack);
  EXPECT_EQ(table().intern(a, 3), ida);
  EXPECT_NE(table().intern(b, 3), ida);
  EXPECT_NE(table().intern(a, 2), ida);  // a prefix is a different stack
  const StackRecord* r = table().get(ida);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->depth, 3u);
  EXPECT_EQ(r->frames()[2], 0x3000u);
}

TEST(StackTable, EmptyStackIsIdZero) {
  EXPECT_EQ(table().intern(nullptr, 0), StackTable::kEmptyStack);
  EXPECT_EQ(table().get(StackTable::kEmptyStack)->depth, 0u);
}

TEST(StackTable, FramesAreResolvedToModules) {
  std::uintptr_t in_test = reinterpret_cast<std::uintptr_t>(&table);
  std::uintptr_t nowhere = 0x10;
  std::uintptr_t frames[] = {in_test, nowhere};
  const StackRecord* r = table().get(table().intern(frames, 2));
  EXPECT_NE(r->modules()[0], ModuleMap::kUnknown);
  EXPECT_EQ(r->modules()[1], ModuleMap::kUnknown);
}

TEST(StackTable, AFullTableGivesTheEmptyStackAndCountsNoFurther) {
  // Its own table: this one is filled. size() bounds every loop over the ids (the peak snapshot
  // wrote past its array when it counted the stacks refused once the table was full).
  ModuleMap modules;
  StackTable full;
  ASSERT_TRUE(full.init(&modules));
  std::uint32_t first = StackTable::kEmptyStack, refused = 0;
  for (std::uintptr_t i = 1; i <= StackTable::kMaxStacks + 1000; ++i) {
    const std::uintptr_t frame = i * 16;
    const std::uint32_t id = full.intern(&frame, 1);
    if (i == 1) first = id;
    refused += id == StackTable::kEmptyStack;
  }
  EXPECT_EQ(full.size(), StackTable::kMaxStacks);
  EXPECT_EQ(refused, 1001u);  // id 0 is the empty stack's own
  const std::uintptr_t frame = 16;
  EXPECT_EQ(full.intern(&frame, 1), first);  // what is in it is still found
}

TEST(StackTable, ConcurrentInterningAgrees) {
  // Enough stacks to fill the first two levels past half: threads racing to close a slot and
  // to insert into it still agree on one id per stack.
  constexpr int kThreads = 4, kStacks = 40000;
  std::vector<std::vector<std::uint32_t>> ids(kThreads, std::vector<std::uint32_t>(kStacks));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kStacks; ++i) {
        std::uintptr_t frames[] = {0x500000u + static_cast<std::uintptr_t>(i), 0x600000, 0x700000};
        ids[t][i] = table().intern(frames, 3);
      }
    });
  for (auto& th : threads) th.join();
  std::set<std::uint32_t> distinct;
  for (int i = 0; i < kStacks; ++i) {
    for (int t = 1; t < kThreads; ++t) ASSERT_EQ(ids[t][i], ids[0][i]) << i;
    distinct.insert(ids[0][i]);
  }
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kStacks));
}

TEST(StackTable, ThreadsRacingOnNewStacksUseNoExtraIds) {
  // Threads that meet the same new stacks at the same moment each take an id for it; the losers'
  // go to their next new stack (they were lost: 8,241 of 2^20 in a two-thread fill, a review's).
  // Tables of its own, so the count is this test's alone; several rounds, since the threads
  // start in step but drift apart (one round missed the old code's waste one time in four).
  constexpr int kRounds = 5, kThreads = 4, kStacks = 40000;
  for (int round = 0; round < kRounds; ++round) {
    ModuleMap modules;
    StackTable own;
    ASSERT_TRUE(own.init(&modules));
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) {
        }
        for (int i = 0; i < kStacks; ++i) {
          std::uintptr_t frames[] = {0x900000u + static_cast<std::uintptr_t>(i), 0xa00000};
          own.intern(frames, 2);
        }
      });
    for (auto& th : threads) th.join();
    // The empty stack, the stacks, and at most one id each thread took last and did not use.
    ASSERT_LE(own.size(), 1u + kStacks + kThreads) << "round " << round;
    ASSERT_GE(own.size(), 1u + kStacks);
  }
}

TEST(StackRecord, AnOvertakenPeakSaveDoesNotWriteOverALaterOne) {
  // One thread claims the save for a peak of 100 bytes and is preempted; a later peak (250)
  // comes, another thread saves for it; the first then stores what the site holds by now.
  StackRecord r{};
  std::uint16_t first = 0, second = 0, again = 0;
  ASSERT_TRUE(r.claim_save(100, &first));
  ASSERT_TRUE(r.claim_save(250, &second));
  EXPECT_FALSE(r.claim_save(250, &again));  // once per peak
  EXPECT_FALSE(r.claim_save(100, &again));  // and never for an earlier one
  std::int64_t bytes = 0, blocks = 0;
  EXPECT_FALSE(r.held_at(250, &bytes, &blocks));  // claimed, not stored yet: the live totals serve
  r.store_save(second, 250, 5);
  r.store_save(first, 999, 9);
  ASSERT_TRUE(r.held_at(250, &bytes, &blocks));
  EXPECT_EQ(bytes, 250);
  EXPECT_EQ(blocks, 5);
  EXPECT_FALSE(r.held_at(100, &bytes, &blocks));
}

TEST(StackRecord, PeakSavesKeepNegativeTotalsAndOutliveTheirNumbers) {
  // A site's total can dip below zero for a moment with threads; the save numbers (16 bits)
  // come round after 65,536 saves.
  StackRecord r{};
  std::int64_t bytes = 0, blocks = 0;
  for (std::uint64_t peak = 1; peak <= 70000; ++peak) {
    std::uint16_t save = 0;
    ASSERT_TRUE(r.claim_save(peak, &save)) << peak;
    r.store_save(save, -static_cast<std::int64_t>(peak), 1);
    ASSERT_TRUE(r.held_at(peak, &bytes, &blocks)) << peak;
    ASSERT_EQ(bytes, -static_cast<std::int64_t>(peak));
  }
}

TEST(ModuleMap, KnowsThisTestAndLibc) {
  ModuleMap modules;
  std::uint16_t self = modules.find(reinterpret_cast<std::uintptr_t>(&table));
  ASSERT_NE(self, ModuleMap::kUnknown);
  Module m = modules.get(self);
  EXPECT_NE(std::string(m.path).find("stack_table_test"), std::string::npos) << m.path;
  std::uint16_t libc = modules.find(reinterpret_cast<std::uintptr_t>(&::getpid));
  ASSERT_NE(libc, ModuleMap::kUnknown);
  EXPECT_NE(std::string(modules.get(libc).path).find("libc.so"), std::string::npos);
}

// glibc before 2.39 leaves the dynamic loader's write lock in a forked child as it was: held, if
// another thread was in dl_iterate_phdr then, and the child's first call waits for ever. With
// loader_calls() readied for a fork, as the tracker's fork handler does, no sync() of another
// thread is in there at the fork, and each child's own call returns. Without it (the same loop,
// no prefork), 6 of 20 children here were still waiting after 2 s.
TEST(ModuleMap, NoSyncHoldsTheLoadersLockAcrossAFork) {
  ModuleMap modules;
  std::atomic<bool> stop{false};
  std::thread syncing([&] {
    while (!stop.load()) modules.sync();
  });
  int stuck = 0;
  for (int i = 0; i < 20; ++i) {
    modules.loader_calls().prefork();
    const pid_t child = fork();
    if (child == 0) {
      alarm(2);  // SIGALRM ends a child that waits
      dl_iterate_phdr([](dl_phdr_info*, std::size_t, void*) { return 1; }, nullptr);
      _exit(0);
    }
    modules.loader_calls().postfork(false);
    ASSERT_GT(child, 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    stuck += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop = true;
  syncing.join();
  EXPECT_EQ(stuck, 0);
}

// Pages wholly inside [from, to): how many, and how many of them are resident.
std::pair<std::size_t, std::size_t> pages_in(const char* from, const char* to) {
  constexpr std::uintptr_t kPage = 4096;
  const auto lo = (reinterpret_cast<std::uintptr_t>(from) + kPage - 1) & ~(kPage - 1);
  const auto hi = reinterpret_cast<std::uintptr_t>(to) & ~(kPage - 1);
  if (lo >= hi) return {0, 0};
  std::vector<unsigned char> in((hi - lo) / kPage);
  EXPECT_EQ(mincore(reinterpret_cast<void*>(lo), hi - lo, in.data()), 0);
  return {in.size(), static_cast<std::size_t>(std::count_if(
                         in.begin(), in.end(), [](unsigned char v) { return v & 1; }))};
}

// The tracker's arena (stack records) is used front to back: its pages are faulted in ahead of
// their first writes, 64 KiB at a time, where each took a page fault. A block of 16 KiB or more
// (a thread's memo: a table a hash writes a few pages of) is left to fault as it is written.
TEST(InternalAlloc, ItsPagesAreFaultedInAheadButNotThoseOfLargeTables) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  // A large one first: its pages past the 64 KiB a step before it may have reached stay out.
  auto* table = static_cast<char*>(internal_alloc(200 << 10));  // never written here
  ASSERT_NE(table, nullptr);
  const auto [table_pages, table_resident] = pages_in(table + (96 << 10), table + (200 << 10));
  EXPECT_GT(table_pages, 20u);
  EXPECT_EQ(table_resident, 0u);
  // Small ones, 100 KiB of them in a row in one chunk (none written): every page they cover is in.
  char* first = nullptr;
  char* last = nullptr;
  for (int run = 0; run < 100;) {
    char* p = static_cast<char*>(internal_alloc(1024));
    ASSERT_NE(p, nullptr);
    if (last && p == last + 1024)
      ++run;
    else
      first = p, run = 1;  // the first, or the arena moved to a new chunk
    last = p;
  }
  const auto [pages, resident] = pages_in(first, last + 1024);
  EXPECT_GE(pages, 24u);
  EXPECT_EQ(resident, pages);
}

}  // namespace
}  // namespace heapledger::detail
