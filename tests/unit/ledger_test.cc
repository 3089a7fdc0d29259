// The ledger and its address map: packing, insert/find/erase against a reference map,
// backward-shift deletion under heavy churn, concurrent use from several threads.
#include "tracker/ledger.h"

#include "shim/pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernel_support.h"

namespace heapledger::detail {
namespace {

TEST(Record, PacksEveryFieldLosslessly) {
  Record r((std::uint64_t{1} << 39) + 12345, AllocKind::kNewArrayAligned, 0x5ABCD,
           (std::uint64_t{1} << 39) + 777, 0xFFFFFE);
  EXPECT_EQ(r.size(), (std::uint64_t{1} << 39) + 12345);
  EXPECT_EQ(r.kind(), AllocKind::kNewArrayAligned);
  EXPECT_EQ(r.thread(), 0x5ABCDu);
  EXPECT_NE(r.first_word(), 0u);
  EXPECT_NE(Record(0, AllocKind::kMalloc, 0, 0, 0).first_word(), 0u) << "zero means no block";
  EXPECT_EQ(Record(16, AllocKind::kNew, Record::kThreadMask + 3, 0, 0).thread(), 2u) << "thread numbers wrap";
  EXPECT_EQ(r.time_us(), (std::uint64_t{1} << 39) + 777);
  EXPECT_EQ(r.stack(), 0xFFFFFEu);
}

TEST(AddressMap, MatchesAReferenceMapUnderRandomChurn) {
  AddressMap<std::uint64_t> map;
  std::unordered_map<std::uintptr_t, std::uint64_t> ref;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300000; ++i) {
    std::uintptr_t key = 16 * (1 + rng() % 5000);  // small key space: many collisions and erases
    if (rng() % 3 == 0) {
      std::uint64_t got = 0;
      bool erased = map.erase(key, &got);
      auto it = ref.find(key);
      ASSERT_EQ(erased, it != ref.end()) << i;
      if (erased) {
        ASSERT_EQ(got, it->second);
      }
      if (it != ref.end()) ref.erase(it);
    } else {
      ASSERT_TRUE(map.insert(key, i));
      ref[key] = static_cast<std::uint64_t>(i);
    }
  }
  ASSERT_EQ(map.size(), ref.size());
  for (auto& [k, v] : ref) {
    std::uint64_t* found = map.find(k);
    ASSERT_NE(found, nullptr) << k;
    ASSERT_EQ(*found, v);
  }
  std::size_t visited = 0;
  map.for_each([&](std::uintptr_t k, std::uint64_t v) {
    ++visited;
    EXPECT_EQ(ref.at(k), v);
  });
  EXPECT_EQ(visited, ref.size());
}

TEST(AddressMap, StaysWithinThreeQuartersLoad) {
  AddressMap<Record> map;
  for (std::uintptr_t i = 1; i <= 100000; ++i) map.insert(i * 64, Record{});
  EXPECT_LE(map.size() * 4, map.capacity() * 3);
  EXPECT_EQ(map.memory_bytes(), map.capacity() * 24);  // 24 bytes a slot: key + packed record
}

TEST(Ledger, InsertFindErase) {
  static Ledger ledger;
  Record r(100, AllocKind::kNew, 1, 5, 7);
  EXPECT_FALSE(ledger.find(0x1000, nullptr));
  EXPECT_TRUE(ledger.insert(0x1000, r));
  Record out;
  EXPECT_TRUE(ledger.find(0x1000, &out));
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(out.stack(), 7u);
  EXPECT_EQ(ledger.size(), 1u);
  EXPECT_TRUE(ledger.erase(0x1000, &out));
  EXPECT_FALSE(ledger.erase(0x1000, &out));
  EXPECT_EQ(ledger.size(), 0u);
}

TEST(Ledger, ReleaseTakesALiveBlockOnce) {
  Ledger ledger;
  void* small = pool::alloc(48);
  const std::uintptr_t addrs[] = {reinterpret_cast<std::uintptr_t>(small), 0x7000'0000'0010};  // records by address, map
  for (std::uintptr_t addr : addrs) {
    ASSERT_TRUE(ledger.insert(addr, Record(48, AllocKind::kMalloc, 1, 5, 7)));
    Release first;
    ledger.release(addr, &first);
    EXPECT_EQ(first.verdict, Release::kLive);
    EXPECT_EQ(first.record.stack(), 7u);
    EXPECT_EQ(first.record.size(), 48u);
    Release second;
    ledger.release(addr, &second);
    EXPECT_EQ(second.verdict, Release::kUnknown);
  }
  pool::free(small);
}

TEST(Ledger, ConcurrentThreadsKeepEveryRecord) {
  static Ledger ledger;
  constexpr int kThreads = 4, kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::uintptr_t addr = (static_cast<std::uintptr_t>(t) << 32) + 16 * (i + 1);
        ASSERT_TRUE(ledger.insert(addr, Record(i, AllocKind::kMalloc, t, 0, 0)));
        if (i % 2) {
          ASSERT_TRUE(ledger.erase(addr, nullptr));
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ledger.size(), static_cast<std::size_t>(kThreads * kPerThread / 2));
  std::uint64_t total = 0;
  ledger.for_each([&](std::uintptr_t, const Record& r) { total += r.size(); });
  std::uint64_t expected = 0;
  for (int i = 0; i < kPerThread; i += 2) expected += static_cast<std::uint64_t>(i);
  EXPECT_EQ(total, expected * kThreads);
}

// The pools' small blocks have their records at a place their address names, not in the map.
TEST(Ledger, PoolBlocksAreFoundByTheirAddress) {
  static Ledger ledger;
  std::vector<std::pair<std::uintptr_t, std::size_t>> blocks;
  for (std::size_t size : {1, 16, 17, 100, 112, 1000, 5000, 32768})
    for (int i = 0; i < 50; ++i)
      blocks.emplace_back(reinterpret_cast<std::uintptr_t>(pool::alloc(size)), size);
  for (auto [addr, size] : blocks) ASSERT_TRUE(ledger.insert(addr, Record(size, AllocKind::kNew, 3, 4, 5)));
  EXPECT_TRUE(ledger.records_by_address());
  EXPECT_EQ(ledger.size(), blocks.size());
  std::size_t visited = 0;
  ledger.for_each([&](std::uintptr_t addr, const Record& r) {
    auto it = std::find(blocks.begin(), blocks.end(), std::make_pair(addr, static_cast<std::size_t>(r.size())));
    EXPECT_NE(it, blocks.end()) << addr;
    ++visited;
  });
  EXPECT_EQ(visited, blocks.size());
  for (auto [addr, size] : blocks) {
    Record r;
    ASSERT_TRUE(ledger.find(addr, &r));
    EXPECT_EQ(r.size(), size);
    EXPECT_EQ(r.stack(), 5u);
    EXPECT_FALSE(ledger.find(addr + 8, nullptr)) << "inside a block is not a block";
  }
  for (auto [addr, size] : blocks) {
    Record r;
    ASSERT_TRUE(ledger.erase(addr, &r));
    EXPECT_EQ(r.size(), size);
    EXPECT_EQ(r.kind(), AllocKind::kNew);
    EXPECT_FALSE(ledger.erase(addr, &r));
    pool::free(reinterpret_cast<void*>(addr));
  }
  EXPECT_EQ(ledger.size(), 0u);
}

// A class's slots past its first 64 KiB of them are faulted in ahead of the blocks recorded in
// them, 64 KiB at a time, as the pools fault in the blocks' own pages: so, once the slot just
// written is on the first page of such a step, the step's other pages are in, never written.
TEST(BlockRecords, TheSlotsOfAGrowingClassAreFaultedInAhead) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  static BlockRecords records;  // a table of its own: no slot of it written but here
  constexpr std::uintptr_t kStep = 64 << 10, kPage = 4096;
  std::vector<void*> blocks;
  const BlockRecords::Slot* highest = nullptr;
  while (blocks.size() < 200000) {
    blocks.push_back(pool::alloc(16));
    BlockRecords::Slot* s = records.slot_to_fill(reinterpret_cast<std::uintptr_t>(blocks.back()));
    ASSERT_NE(s, nullptr);
    BlockRecords::put(s, Record(16, AllocKind::kMalloc, 1, 2, 3));
    // The class's range's slots: its starter slice's (its first 4,096 blocks) are made writable
    // at once and never faulted in ahead, and lie past every range's.
    if (reinterpret_cast<std::uintptr_t>(blocks.back()) >= pool::g_region.starter) continue;
    if (highest && s < highest) continue;
    highest = s;
    const auto at = reinterpret_cast<std::uintptr_t>(s);
    if (blocks.size() > 2 * kStep / sizeof(BlockRecords::Slot) && at % kStep < kPage &&
        at % kPage < kPage - sizeof(BlockRecords::Slot))
      break;
  }
  const auto step = reinterpret_cast<std::uintptr_t>(highest) & ~(kStep - 1);
  std::vector<unsigned char> in(kStep / kPage);
  ASSERT_EQ(mincore(reinterpret_cast<void*>(step), kStep, in.data()), 0);
  EXPECT_EQ(std::count_if(in.begin(), in.end(), [](unsigned char v) { return v & 1; }),
            static_cast<long>(in.size()))
      << "the pages of a 64 KiB step of slots, one of them written";
  for (void* p : blocks) {
    BlockRecords::take(records.slot(reinterpret_cast<std::uintptr_t>(p)), nullptr);
    pool::free(p);
  }
}

// The starter slices of the slot table are packed, each on a cache line of its own: the first
// blocks of the classes from 256 bytes up (29 of them) have their slots on a few pages, where
// each slice on a page of its own took one for each class a process used.
TEST(BlockRecords, TheLargeClassesFirstSlotsSharePages) {
  static BlockRecords records;
  pool::free(pool::alloc(16));  // the pools' region, as every other test here has it
  std::set<std::uintptr_t> pages;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    if (kClassSize[cls] < 256) continue;
    BlockRecords::Slot* s = records.slot_to_fill(pool::first_block(cls, pool::kStarter));
    ASSERT_NE(s, nullptr) << "class " << kClassSize[cls];
    const auto at = reinterpret_cast<std::uintptr_t>(s);
    EXPECT_EQ(at % 64, 0u) << "class " << kClassSize[cls] << ": a cache line of its own";
    pages.insert(at / 4096);
  }
  EXPECT_LE(pages.size(), 8u);
}

// Asked of a slot on a page never touched, holds_freed_before_put() faults the page in for the
// put that follows: one page fault, where a plain read mapped the zero page and the put's write
// faulted again.
TEST(BlockRecords, ASlotAskedBeforeItsPutFaultsItsPageInOnce) {
  constexpr std::size_t kPage = 4096;
  void* page = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  auto* slot = static_cast<BlockRecords::Slot*>(page);
  rusage before{}, after{};
  ASSERT_EQ(getrusage(RUSAGE_THREAD, &before), 0);
  const bool freed = BlockRecords::holds_freed_before_put(slot);
  BlockRecords::put(slot, Record(64, AllocKind::kInternal, 1, 2, 3));
  ASSERT_EQ(getrusage(RUSAGE_THREAD, &after), 0);
  EXPECT_FALSE(freed) << "an empty slot";
  EXPECT_EQ(after.ru_minflt - before.ru_minflt, 1);
  Record r;
  EXPECT_TRUE(BlockRecords::get(slot, &r));
  EXPECT_EQ(r.size(), 64u);
  munmap(page, kPage);
}

// The winner also keeps the block's freed record (as the quarantine does): the loser's attempt
// must leave that record alone.
TEST(Ledger, OfTwoThreadsFreeingOneBlockExactlyOneGetsItsRecord) {
  static Ledger ledger;
  constexpr int kBlocks = 20000;
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(reinterpret_cast<std::uintptr_t>(pool::alloc(48)));
    ASSERT_TRUE(ledger.insert(blocks.back(), Record(48, AllocKind::kMalloc, 1, 0, 0)));
  }
  std::atomic<int> taken{0};
  std::atomic<bool> go{false};
  auto race = [&](std::uintptr_t mark) {
    while (!go.load()) {
    }
    for (std::uintptr_t addr : blocks)
      if (Release rel; ledger.release(addr, &rel), rel.verdict == Release::kLive) {
        taken.fetch_add(1);
        const std::uintptr_t held[2] = {addr ^ mark, mark};
        Ledger::keep_freed(rel, held);
      }
  };
  std::thread a(race, 0x1111), b(race, 0x2222);
  go.store(true);
  a.join();
  b.join();
  EXPECT_EQ(taken.load(), kBlocks);
  for (std::uintptr_t addr : blocks) {
    std::uintptr_t found[2] = {};
    ASSERT_TRUE(ledger.find_freed(addr, found)) << "a loser wiped the record of " << addr;
    EXPECT_EQ(found[0], addr ^ found[1]);
    pool::free(reinterpret_cast<void*>(addr));
  }
}

// The quarantine keeps a freed small block's record in its slot: not a live block for anything
// that looks for one, found again by find_freed, and gone once the block is recorded again.
TEST(Ledger, AFreedBlocksRecordStaysInItsSlotUntilTheBlockIsRecordedAgain) {
  static Ledger ledger;
  const auto addr = reinterpret_cast<std::uintptr_t>(pool::alloc(40));
  const std::uintptr_t held[2] = {addr ^ 0x1234'5678, 0xABCD'0000'0042};
  std::uintptr_t found[2] = {};
  EXPECT_FALSE(ledger.find_freed(addr, found)) << "never freed";
  ASSERT_TRUE(ledger.insert(addr, Record(40, AllocKind::kMalloc, 1, 2, 3)));
  EXPECT_FALSE(ledger.find_freed(addr, found)) << "a live block's record is not a freed one";
  Release rel;
  ledger.release(addr, &rel);
  ASSERT_EQ(rel.verdict, Release::kLive);
  ASSERT_NE(rel.slot, nullptr) << "a pool block's record is in the table";
  Ledger::keep_freed(rel, held);
  for (int i = 0; i < 2; ++i) {  // a second free finds no live block, and leaves the record
    EXPECT_FALSE(ledger.find(addr, nullptr));
    EXPECT_FALSE(ledger.erase(addr, nullptr));
    EXPECT_EQ(ledger.size(), 0u);
    ASSERT_TRUE(ledger.find_freed(addr, found));
    EXPECT_EQ(found[0], held[0]);
    EXPECT_EQ(found[1], held[1]);
  }
  ASSERT_TRUE(ledger.insert(addr, Record(24, AllocKind::kNew, 1, 2, 3)));
  EXPECT_FALSE(ledger.find_freed(addr, found));
  Record r;
  ASSERT_TRUE(ledger.find(addr, &r));
  EXPECT_EQ(r.size(), 24u);
  ASSERT_TRUE(ledger.erase(addr, nullptr));
  pool::free(reinterpret_cast<void*>(addr));
}

// The tracker's own block on a slot that keeps a freed block's record (the pools handed the
// tracker that block while the program's stale pointer to it was being freed again) is kept in
// the map: the freed record stays for that second free, and the tracker's block is found, and
// released, as ever. Recorded in its slot, it wiped the first free's record (a user trial's).
TEST(Ledger, TheTrackersOwnBlockLeavesAFreedBlocksRecordInItsSlot) {
  static Ledger ledger;
  const auto addr = reinterpret_cast<std::uintptr_t>(pool::alloc(200));
  const std::uintptr_t held[2] = {addr ^ 0x1234'5678, 0xABCD'0000'0042};
  std::uintptr_t found[2] = {};
  ASSERT_TRUE(ledger.insert(addr, Record(200, AllocKind::kMalloc, 1, 2, 3)));
  Release rel;
  ledger.release(addr, &rel);
  ASSERT_EQ(rel.verdict, Release::kLive);
  Ledger::keep_freed(rel, held);
  ASSERT_TRUE(ledger.insert(addr, Record(208, AllocKind::kInternal, 0, 0, 0)));
  ASSERT_TRUE(ledger.find_freed(addr, found)) << "the tracker's block wiped the freed record";
  EXPECT_EQ(found[0], held[0]);
  Record r;
  ASSERT_TRUE(ledger.find(addr, &r));
  EXPECT_EQ(r.kind(), AllocKind::kInternal);
  EXPECT_EQ(ledger.size(), 1u);
  ledger.release(addr, &rel);
  ASSERT_EQ(rel.verdict, Release::kLive);
  EXPECT_EQ(rel.record.kind(), AllocKind::kInternal);
  EXPECT_EQ(rel.slot, nullptr) << "its record was the map's, not the slot's";
  ledger.release(addr, &rel);
  EXPECT_EQ(rel.verdict, Release::kUnknown) << "released once";
  ASSERT_TRUE(ledger.find_freed(addr, found)) << "the program's free still remembered";
  EXPECT_EQ(found[1], held[1]);
  // The program's own next block there replaces the freed record, in the slot.
  ASSERT_TRUE(ledger.insert(addr, Record(200, AllocKind::kMalloc, 1, 2, 3)));
  EXPECT_FALSE(ledger.find_freed(addr, found));
  ledger.release(addr, &rel);
  ASSERT_EQ(rel.verdict, Release::kLive);
  EXPECT_NE(rel.slot, nullptr);
  pool::free(reinterpret_cast<void*>(addr));
}

// Where the address space for the records' table is refused (ulimit -v, strict overcommit), the
// pools' blocks are kept in the map instead, and nothing else changes.
TEST(Ledger, PoolBlocksGoToTheMapWhenTheRecordsTableCannotBeMapped) {
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(pool::alloc(24));  // the pools are set up
  std::size_t vm_pages = 0;
  std::ifstream("/proc/self/statm") >> vm_pages;
  ASSERT_GT(vm_pages, 0u);
  rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
  rlimit tight = old;
  tight.rlim_cur = vm_pages * 4096 + (std::size_t{256} << 20);  // room for the map, not the table
  ASSERT_EQ(setrlimit(RLIMIT_AS, &tight), 0);
  static Ledger ledger;
  bool inserted = true;
  for (void* p : blocks) inserted &= ledger.insert(reinterpret_cast<std::uintptr_t>(p), Record(24, AllocKind::kMalloc, 1, 2, 3));
  std::size_t table_bytes = ledger.memory_bytes();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
  EXPECT_FALSE(ledger.records_by_address());
  EXPECT_TRUE(inserted);
  EXPECT_GT(table_bytes, 0u);
  EXPECT_EQ(ledger.size(), blocks.size());
  for (void* p : blocks) {
    Record r;
    ASSERT_TRUE(ledger.find(reinterpret_cast<std::uintptr_t>(p), &r));
    EXPECT_EQ(r.size(), 24u);
  }
  // Mapped now that the limit is gone, the table must not take over: these blocks are in the map.
  for (void* p : blocks) {
    EXPECT_TRUE(ledger.erase(reinterpret_cast<std::uintptr_t>(p), nullptr));
    pool::free(p);
  }
  EXPECT_EQ(ledger.size(), 0u);
}

// Under an address-space limit the table (sparse, but counted in full) is taken only if it
// leaves the program three quarters of what is left; it would fit in the first case below.
TEST(Ledger, TheRecordsTableLeavesTheProgramRoomUnderAnAddressSpaceLimit) {
  void* block = pool::alloc(24);  // the pools are set up
  const std::uint64_t table = BlockRecords::table_bytes();
  ASSERT_GT(table, 0u);
  for (std::uint64_t times : {2, 8}) {
    std::size_t vm_pages = 0;
    std::ifstream("/proc/self/statm") >> vm_pages;
    ASSERT_GT(vm_pages, 0u);
    rlimit old;
    ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    if (old.rlim_cur != RLIM_INFINITY) GTEST_SKIP() << "runs under an address-space limit already";
    rlimit limit = old;
    limit.rlim_cur = vm_pages * 4096 + times * table;
    ASSERT_EQ(setrlimit(RLIMIT_AS, &limit), 0);
    Ledger* ledger = new Ledger;  // left mapped: the test process ends soon
    const bool inserted = ledger->insert(reinterpret_cast<std::uintptr_t>(block),
                                         Record(24, AllocKind::kMalloc, 1, 2, 3));
    const bool by_address = ledger->records_by_address();
    ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
    EXPECT_TRUE(inserted) << times;
    EXPECT_EQ(by_address, times == 8) << "limit " << times << "x the table";
    EXPECT_TRUE(ledger->erase(reinterpret_cast<std::uintptr_t>(block), nullptr));
  }
  pool::free(block);
}

}  // namespace
}  // namespace heapledger::detail
