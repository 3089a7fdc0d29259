// The pools, driven directly (this test process keeps glibc's malloc for itself): reuse,
// alignment, large blocks, cross-thread frees, thread exit, foreign pointers.
#include "shim/pool.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel_support.h"
#include "shim/os.h"
#include "shim/space_limit.h"
#include "shim/system_heap.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace heapledger::detail {
namespace {

TEST(Pool, SmallBlocksAreReusedLastInFirstOut) {
  void* a = pool::alloc(100);
  ASSERT_NE(a, nullptr);
  EXPECT_GE(pool::small_class_of(a), 0);
  EXPECT_EQ(pool::usable_size(a), 112u);
  EXPECT_EQ(pool::free(a), pool::FreeResult::kFreed);
  EXPECT_EQ(pool::alloc(100), a);
  pool::free(a);
}

// Caching a freed block, and moving it to the central lists, never writes into it: a block freed
// long ago is cold, and a link written into it cost every free a cache miss.
TEST(Pool, FreedBlocksAreNeverWrittenTo) {
  constexpr std::size_t kSize = 200;
  const std::uint32_t kBlocks = 4 * batch_size(size_class(kSize));  // past the cache, to the lists
  std::thread([&] {
    std::vector<unsigned char*> blocks;
    for (std::uint32_t i = 0; i < kBlocks; ++i) {
      blocks.push_back(static_cast<unsigned char*>(pool::alloc(kSize)));
      std::memset(blocks.back(), 0x5a, kSize);
    }
    for (unsigned char* b : blocks) pool::free(b);
    for (unsigned char* b : blocks)  // the pools' own memory, never unmapped: safe to read here
      ASSERT_EQ(std::count(b, b + kSize, 0x5a), static_cast<std::ptrdiff_t>(kSize)) << static_cast<void*>(b);
  }).join();
}

// Each thread's cache arrays come from internal memory, and an exited thread's serve the next.
TEST(Pool, ThreadCachesAreReusedAcrossThreads) {
  auto internal_mappings = [] { return os::internal_ranges(nullptr, 0); };
  std::thread([] { pool::free(pool::alloc(24)); }).join();  // one array exists, and is spare now
  const std::size_t before = internal_mappings();
  for (int i = 0; i < 200; ++i) std::thread([] { pool::free(pool::alloc(24)); }).join();
  EXPECT_EQ(internal_mappings(), before);
}

// A signal handler's allocation on a thread that was inside a class's central lists (refilling or
// flushing it) is served from a class further up that keeps the size and alignment promised, or
// past the last class from a mapping of its own: it used to fail, and glibc ends the process when
// that allocation is its own (a thread's dynamic TLS in its first handler).
TEST(Pool, AllocationsInsideTheirClassListsAreServedFromAnotherClass) {
  struct Request {
    std::size_t size, align;
    void* got;
  };
  for (Request r : {Request{16, 16, nullptr}, Request{24, 16, nullptr}, Request{64, 64, nullptr},
                    Request{256, 256, nullptr}, Request{4096, 4096, nullptr}, Request{20000, 16, nullptr},
                    Request{30000, 16, nullptr}, Request{100, 32768, nullptr}}) {  // the last class: mapped
    const unsigned cls = aligned_size_class(r.size, r.align);
    std::thread([&] {  // a fresh thread: its cache is empty, so the allocation goes to the lists
      pool::with_class_lists_held(cls, [](void* arg) {
        auto* req = static_cast<Request*>(arg);
        req->got = pool::alloc_aligned(req->size, req->align);
      }, &r);
      ASSERT_NE(r.got, nullptr) << r.size;
      EXPECT_NE(static_cast<unsigned>(pool::small_class_of(r.got)), cls) << r.size;
      EXPECT_GE(pool::usable_size(r.got), r.size);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.got) % r.align, 0u) << r.size;
      std::memset(r.got, 0x33, r.size);
      pool::free(r.got);
    }).join();
  }
}

// For an invalid free: the block a pointer points into, small or large.
TEST(Pool, BlockContainingAnInteriorPointer) {
  auto* small = static_cast<char*>(pool::alloc(100));
  auto* large = static_cast<char*>(pool::alloc(100000));
  const auto start = [](const char* p) { return reinterpret_cast<std::uintptr_t>(p); };
  EXPECT_EQ(pool::block_containing(small), start(small));
  EXPECT_EQ(pool::block_containing(small + 111), start(small));  // its 112-byte slot
  EXPECT_EQ(pool::block_containing(small + 112), start(small) + 112);  // the next slot
  EXPECT_EQ(pool::block_containing(large + 40000), start(large));
  EXPECT_EQ(pool::block_containing(large + 100000 - 1), start(large));
  int local = 0;
  EXPECT_EQ(pool::block_containing(&local), 0u);
  pool::free(small);
  pool::free(large);
  EXPECT_EQ(pool::block_containing(large + 40000), 0u);  // freed (kept for reuse): no block
}

TEST(Pool, ClassFollowsFromAddress) {
  for (std::size_t size : {1, 16, 17, 200, 1024, 4000, 32768}) {
    void* p = pool::alloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(static_cast<unsigned>(pool::small_class_of(p)), size_class(size)) << size;
    EXPECT_GE(pool::usable_size(p), size);
    std::memset(p, 0xab, size);
    pool::free(p);
  }
}

// A class's first blocks come from its slice of the starter zone, where every class's slice lies
// side by side (a process's first use of a class took page-table pages of its own in its 64 GiB
// range); once the slice is used up, from the class's range. Either way the class follows from the
// address, and the block is known for what it is.
TEST(Pool, EachClassStartsInItsSliceOfTheStarterZoneThenGoesOnInItsRange) {
  ASSERT_TRUE(pool::ready());  // the region, with no block taken
  std::thread([] {             // a thread of its own: no cached blocks of an earlier test
    const std::uintptr_t zone = pool::g_region.starter;
    for (unsigned c = 0; c < kNumClasses; ++c) {
      const std::size_t size = kClassSize[c], lowbit = size & (~size + 1);
      const std::uintptr_t slice = zone + (std::uintptr_t{c} << kStarterShift);
      const std::uintptr_t first = pool::first_block(c, pool::kStarter);
      ASSERT_EQ(first, slice + starter_offset(c)) << c;
      ASSERT_EQ(first % std::min<std::size_t>(lowbit, 4096), 0u) << c;
      const std::size_t in_slice = (kStarterSlice - starter_offset(c)) / size;
      ASSERT_GE(in_slice, 2u) << c;
      std::vector<char*> blocks;
      std::size_t starters = 0;
      for (;;) {
        auto* p = static_cast<char*>(pool::alloc(size));
        ASSERT_NE(p, nullptr);
        blocks.push_back(p);
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        ASSERT_EQ(static_cast<unsigned>(pool::small_class_of(p)), c);
        ASSERT_EQ(pool::usable_size(p), size);
        ASSERT_TRUE(pool::owns_block_start(p));
        ASSERT_FALSE(pool::owns_block_start(p + 8));
        ASSERT_EQ(pool::block_containing(p + size - 1), addr);
        if (addr < zone) {  // the first of its range
          ASSERT_EQ(addr, pool::first_block(c, pool::kRange)) << c;
          break;
        }
        ASSERT_GE(addr, first) << c;
        ASSERT_LT(addr + size, slice + kStarterSlice + 1) << c;
        ASSERT_EQ((addr - first) % size, 0u) << c;
        ++starters;
      }
      EXPECT_EQ(starters, in_slice) << "class " << c << ": blocks from its slice";
      for (char* p : blocks) pool::free(p);
    }
  })
      .join();
  // Addresses of a slice that no block starts or lies in: before its first block, and past its
  // last one where the slice has room for no more.
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const std::uintptr_t slice = pool::g_region.starter + (std::uintptr_t{c} << kStarterShift);
    const std::uintptr_t first = pool::first_block(c, pool::kStarter);
    const std::uintptr_t past =
        first + (kStarterSlice - starter_offset(c)) / kClassSize[c] * kClassSize[c];
    ASSERT_LE(past, slice + kStarterSlice) << c;
    for (std::uintptr_t addr : {slice, first - 16, past, slice + kStarterSlice - 16}) {
      if (addr < slice || addr >= slice + kStarterSlice || (addr >= first && addr < past))
        continue;  // (no leading offset, or no tail)
      const auto* p = reinterpret_cast<const void*>(addr);
      EXPECT_EQ(pool::block_containing(p), 0u) << "class " << c << ", slice + " << addr - slice;
      EXPECT_FALSE(pool::owns_block_start(p)) << "class " << c << ", slice + " << addr - slice;
      EXPECT_EQ(static_cast<unsigned>(pool::small_class_of(p)), c) << "the zone's, all of it";
    }
  }
}

// Where a sparse mapping costs only the pages written (no ulimit -d, overcommit not strict), the
// bitmaps of every class are one writable mapping from the start: made usable piecemeal, they took
// three mprotect calls per class at its first use and left up to six mappings per class behind.
// (Under a data limit they are made usable as blocks are carved: run_classify.py,
// test_a_data_limit_is_spent_on_the_programs_blocks.)
TEST(Pool, TheBitmapsOfEveryClassAreOneMappingWhereSparseMemoryIsFree) {
  rlimit data{};
  ASSERT_EQ(getrlimit(RLIMIT_DATA, &data), 0);
  std::string mode;
  std::ifstream("/proc/sys/vm/overcommit_memory") >> mode;
  const bool free = data.rlim_cur == RLIM_INFINITY && (mode == "0" || mode == "1");
  EXPECT_EQ(os::sparse_mapping_free(), free) << "overcommit_memory " << mode;
  if (!free) GTEST_SKIP() << "a data limit, or strict overcommit";
  std::vector<void*> blocks;
  for (unsigned c = 0; c < kNumClasses; ++c) {
    blocks.push_back(pool::alloc(kClassSize[c]));
    ASSERT_NE(blocks.back(), nullptr) << c;
    ASSERT_EQ(static_cast<unsigned>(pool::small_class_of(blocks.back())), c);
  }
  for (void* p : blocks) pool::free(p);
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> maps;
  std::ifstream in("/proc/self/maps");
  for (std::string line; std::getline(in, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2) maps.emplace_back(lo, hi);
  }
  os::Range ranges[8192];
  const std::size_t n = std::min<std::size_t>(os::internal_ranges(ranges, 8192), 8192);
  ASSERT_GT(n, 0u);
  for (std::size_t i = 0; i < n; ++i) {
    const auto lo = reinterpret_cast<std::uintptr_t>(ranges[i].start), hi = lo + ranges[i].bytes;
    const auto pieces = std::count_if(maps.begin(), maps.end(),
                                      [&](const auto& m) { return m.first < hi && m.second > lo; });
    EXPECT_EQ(pieces, 1) << "internal range of " << ranges[i].bytes << " bytes";
  }
}

TEST(Pool, BlocksAreDistinctAndWritable) {
  std::vector<char*> blocks;
  std::set<char*> seen;
  for (int i = 0; i < 20000; ++i) {
    std::size_t size = 1 + (i * 37) % 3000;
    auto* p = static_cast<char*>(pool::alloc(size));
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(seen.insert(p).second) << "block handed out twice";
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
    std::memset(p, i & 0xff, size);
    blocks.push_back(p);
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    std::size_t size = 1 + (i * 37) % 3000;
    ASSERT_EQ(static_cast<unsigned char>(blocks[i][size - 1]), i & 0xff) << "block overwritten";
    pool::free(blocks[i]);
  }
}

TEST(Pool, EveryAlignmentIsHonouredExactly) {
  for (std::size_t align = 1; align <= (std::size_t{1} << 20); align *= 2) {
    for (std::size_t size : {std::size_t{1}, std::size_t{24}, std::size_t{3000}, std::size_t{70000}}) {
      void* p = pool::alloc_aligned(size, align);
      ASSERT_NE(p, nullptr) << size << "/" << align;
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << size << "/" << align;
      EXPECT_GE(pool::usable_size(p), size);
      std::memset(p, 1, size);
      EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
    }
  }
}

TEST(Pool, LargeBlocksAreMappedAndReturned) {
  std::size_t before = pool::stats().large_live;
  auto* p = static_cast<char*>(pool::alloc(1 << 20));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pool::small_class_of(p), -1);
  EXPECT_EQ(pool::usable_size(p), std::size_t{1} << 20);
  // Live large memory counts mappings: a fresh one of 1 MiB, or a longer one another test freed
  // and the pools kept (a 1,396,736-byte one, run after the guard page test: --gtest_shuffle).
  const std::size_t grew = pool::stats().large_live - before;
  EXPECT_GE(grew, std::size_t{1} << 20);
  EXPECT_EQ(grew % os::kPageSize, 0u);
  p[0] = 1;
  p[(1 << 20) - 1] = 2;
  auto* q = static_cast<char*>(pool::realloc_large(p, 3 << 20));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q[0], 1);
  EXPECT_EQ(q[(1 << 20) - 1], 2);
  EXPECT_EQ(pool::usable_size(q), std::size_t{3} << 20);
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
  EXPECT_EQ(pool::stats().large_live, before);
}

TEST(Pool, FreedLargeMappingsAreReusedAndClearedForCalloc) {
  const std::size_t size = 333 * 4096;  // a length no other test frees
  auto* p = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xab, size);
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  auto* q = static_cast<unsigned char*>(pool::alloc(size));
  EXPECT_EQ(q, p);  // the kept mapping, with what it held
  EXPECT_EQ(q[size - 1], 0xab);
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
  // A zeroed block takes it too, cleared (a fresh mapping for every calloc faulted every page in).
  auto* z = static_cast<unsigned char*>(pool::alloc_large(size, kMinAlign, true));
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z, p);
  for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(z[i], 0) << i;
  std::memset(z, 0xcd, size);
  EXPECT_EQ(pool::free(z), pool::FreeResult::kFreed);
  // A smaller one gets the mapping whole (up to 8 times its size): what it asked for is zero.
  const std::size_t smaller = 200 * 4096 + 100;
  z = static_cast<unsigned char*>(pool::alloc_large(smaller, kMinAlign, true));
  ASSERT_EQ(z, p);
  for (std::size_t i = 0; i < smaller; ++i) ASSERT_EQ(z[i], 0) << i;
  EXPECT_EQ(pool::free(z), pool::FreeResult::kFreed);
}

TEST(Pool, ACallocOfAKeptMappingFaultsInOnlyThePagesItsOwnerTouched) {
  // A big block whose owner wrote two of its pages, freed and taken by a calloc: the clear wrote
  // over every page its owner asked for, faulting each in (a user trial: 30,000 blocks of 200
  // KB, barely touched, took 2 GB). Now the pages not in memory are left out. A clear may skip
  // the question while earlier ones found every page in memory (other tests'): each such try
  // spoils its mapping (every page written), so the next try takes a longer, fresh one.
  // Under a seccomp filter (a container's) the question is never asked: every page is written.
  {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if ((line.rfind("Seccomp:", 0) == 0 || line.rfind("NoNewPrivs:", 0) == 0) &&
          line.find_first_of("123456789") != std::string::npos)
        GTEST_SKIP() << "under a sandbox: " << line;
  }
  for (std::size_t pages = 1100; pages < 1100 + 70; ++pages) {
    const std::size_t size = pages * 4096;
    auto* p = static_cast<unsigned char*>(pool::alloc_large(size, kMinAlign, false));
    ASSERT_NE(p, nullptr);
    // Small pages whatever the system's huge-page setting ("always": a touch brought in 512 of
    // them, a review's); the advice stays with the mapping.
    madvise(p, size, MADV_NOHUGEPAGE);
    p[0] = 1;
    p[150 * 4096] = 1;
    EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
    auto* z = static_cast<unsigned char*>(pool::alloc_large(size, kMinAlign, true));
    ASSERT_EQ(z, p);
    std::vector<unsigned char> present(pages);
    ASSERT_EQ(mincore(z, size, present.data()), 0);
    const auto in_memory = static_cast<std::size_t>(
        std::count_if(present.begin(), present.end(), [](unsigned char c) { return c & 1; }));
    if (in_memory == pages) {  // written over without asking
      EXPECT_EQ(pool::free(z), pool::FreeResult::kFreed);
      continue;
    }
    EXPECT_EQ(in_memory, 2u);
    EXPECT_TRUE(present[0] & 1);
    EXPECT_TRUE(present[150] & 1);
    for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(z[i], 0) << i;
    EXPECT_EQ(pool::free(z), pool::FreeResult::kFreed);
    return;
  }
  FAIL() << "every clear wrote over every page";
}

TEST(Pool, KeptMappingsGoBackOnRequest) {  // malloc_trim
  pool::give_back_kept_mappings();
  EXPECT_FALSE(pool::give_back_kept_mappings());  // none left
  void* p = pool::alloc(256 * 1024);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  EXPECT_TRUE(pool::give_back_kept_mappings());
  EXPECT_FALSE(pool::give_back_kept_mappings());
}

TEST(Pool, AMappingMadeForAGrowingRequestHasRoomToGrow) {
  pool::give_back_kept_mappings();  // no other test's mapping in the way
  const std::size_t page = 4096;
  auto* p = static_cast<unsigned char*>(pool::alloc(61 * page));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xab, 61 * page);
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  // The kept mapping is a page short: the program's requests grow past its freed ones, so the
  // new mapping gets room to grow (address space only).
  const std::size_t before = pool::stats().large_live;
  auto* q = static_cast<unsigned char*>(pool::alloc(62 * page));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  EXPECT_EQ(pool::usable_size(q), 62 * page);
  EXPECT_EQ(pool::stats().large_live, before + 4 * 62 * page);
  std::memset(q, 0xab, 62 * page);
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
  // Freed, it serves the next larger request; a calloc's reads zero, past what the last owner
  // wrote too.
  auto* r = static_cast<unsigned char*>(pool::alloc_large(70 * page, kMinAlign, true));
  ASSERT_EQ(r, q);
  EXPECT_EQ(pool::usable_size(r), 70 * page);
  for (std::size_t i = 0; i < 70 * page; ++i) ASSERT_EQ(r[i], 0) << i;
  EXPECT_EQ(pool::free(r), pool::FreeResult::kFreed);
  // Not so for a first request, with nothing shorter kept: its pages, and one past them (see
  // APointerPastALargeBlocksEndNeverStartsAnother).
  pool::give_back_kept_mappings();
  const std::size_t before_exact = pool::stats().large_live;
  auto* s = pool::alloc(62 * page);
  EXPECT_EQ(pool::stats().large_live, before_exact + 63 * page);
  EXPECT_EQ(pool::free(s), pool::FreeResult::kFreed);
  pool::give_back_kept_mappings();
}

// Whether the calling process may read the page at p (a write() from it fails with EFAULT).
bool readable(const void* p) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const bool ok = write(fds[1], p, 1) == 1;
  close(fds[0]);
  close(fds[1]);
  return ok;
}

// Whether the mapping holding p is left out of core dumps (MADV_DONTDUMP: "dd" in its VmFlags).
bool left_out_of_dumps(const void* p) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return false;
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  char line[512];
  bool inside = false, dd = false;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
      inside = at >= lo && at < hi;  // a mapping's first line
    if (inside && std::strncmp(line, "VmFlags:", 8) == 0) dd = std::strstr(line, " dd") != nullptr;
  }
  std::fclose(f);
  return dd;
}

TEST(Pool, AFreedMappingGetsItsAdviceResetOnlyIfTheProgramGaveAny) {
  // This test calls mprotect and madvise through the system call, which nothing counts (the
  // library's exported ones do): with the count unchanged, a freed mapping gets its protection
  // reset (one system call) but not its advice (four more, spared).
  const std::size_t size = 337 * 4096;  // a length no other test frees
  auto* p = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_NE(p, nullptr);
  unsigned char* last = p + size - 4096;
  ASSERT_EQ(syscall(SYS_mprotect, last, 4096, PROT_NONE), 0);
  ASSERT_EQ(syscall(SYS_madvise, p, size, MADV_DONTDUMP), 0);
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  auto* q = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_EQ(q, p);
  EXPECT_TRUE(readable(last));        // protection: always
  EXPECT_TRUE(left_out_of_dumps(q));  // advice: not reset, nothing said there was any

  os::count_program_advice();  // what the exported madvise does first
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
  auto* r = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_EQ(r, p);
  EXPECT_FALSE(left_out_of_dumps(r));  // reset
  r[size - 1] = 1;
  EXPECT_EQ(pool::free(r), pool::FreeResult::kFreed);
}

TEST(Pool, AGuardPageTheProgramInstalledIsGoneFromTheNextBlock) {
  // MADV_GUARD_INSTALL (Linux 6.13): a page that kills whatever touches it. The next block that
  // takes the kept mapping (here, the same) must not have it; the tracker's clearing of a reused
  // block wrote over it, inside malloc.
  constexpr int kGuardInstall = 102;
  const std::size_t size = 341 * 4096;
  auto* p = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_NE(p, nullptr);
  unsigned char* guard = p + 8 * 4096;
  if (syscall(SYS_madvise, guard, 4096, kGuardInstall) != 0) {
    pool::free(p);
    GTEST_SKIP() << "no guard pages on this kernel";
  }
  EXPECT_FALSE(readable(guard));
  os::count_program_advice();  // what the exported madvise does first
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  auto* q = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_EQ(q, p);
  EXPECT_TRUE(readable(guard));
  std::memset(q, 1, size);
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
}

TEST(Pool, AMappingWithAHoleIsNeverKept) {
  // A page of the block unmapped behind the pools' back (munmap, or mmap over it: not counted):
  // the protection reset fails there, and the mapping goes back to the system, not to the
  // next block.
  const std::size_t size = 339 * 4096;
  auto* p = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(munmap(p + 4096, 4096), 0);
  EXPECT_EQ(pool::free(p), pool::FreeResult::kFreed);
  auto* q = static_cast<unsigned char*>(pool::alloc(size));
  ASSERT_NE(q, nullptr);
  std::memset(q, 1, size);  // whole, wherever it is
  EXPECT_EQ(pool::free(q), pool::FreeResult::kFreed);
}

// The exit report's stack: a thread made with 32 KiB of stack runs 256 KiB of frames on it,
// in an internal mapping (the leak scan skips those), and carries on where it was afterwards.
struct OwnStackRun {
  std::uintptr_t frame = 0;
  bool in_internal = false;
  unsigned sum = 0;
};

void deep_work(void* arg) {
  auto* run = static_cast<OwnStackRun*>(arg);
  volatile unsigned char big[256 * 1024];
  for (std::size_t i = 0; i < sizeof big; i += 512) big[i] = static_cast<unsigned char>(i >> 9);
  for (std::size_t i = 0; i < sizeof big; i += 512) run->sum += big[i];
  run->frame = reinterpret_cast<std::uintptr_t>(&big[0]);
  os::Range ranges[8192];
  const std::size_t n = std::min<std::size_t>(os::internal_ranges(ranges, 8192), 8192);
  for (std::size_t i = 0; i < n; ++i) {
    const auto lo = reinterpret_cast<std::uintptr_t>(ranges[i].start);
    if (run->frame - lo < ranges[i].bytes) run->in_internal = true;
  }
}

void* small_thread(void* arg) {
  auto* run = static_cast<OwnStackRun*>(arg);
  const bool ran = os::run_on_own_stack(std::size_t{1} << 20, deep_work, run);
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(ran));
}

TEST(Os, RunOnOwnStackGivesRoomAThreadHasNot) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 32 * 1024), 0);
  OwnStackRun run;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, small_thread, &run), 0);
  void* ran = nullptr;
  ASSERT_EQ(pthread_join(t, &ran), 0);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(ran), 1u);
  unsigned want = 0;
  for (std::size_t i = 0; i < 256 * 1024; i += 512) want += static_cast<unsigned char>(i >> 9);
  EXPECT_EQ(run.sum, want);
  EXPECT_TRUE(run.in_internal);
  // The stack is gone once it has run.
  os::Range ranges[8192];
  const std::size_t n = std::min<std::size_t>(os::internal_ranges(ranges, 8192), 8192);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_GE(run.frame - reinterpret_cast<std::uintptr_t>(ranges[i].start), ranges[i].bytes);
}

// The address-space and data limits are the whole process's: each case runs in a child (a death
// test).
std::size_t kernel_soft_limit(int resource) {
  rlimit now{};
  syscall(SYS_prlimit64, 0, resource, nullptr, &now);
  return now.rlim_cur;
}
bool can_map(std::size_t bytes, int prot = PROT_NONE) {
  void* p = mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  munmap(p, bytes);
  return true;
}

[[noreturn]] void lower_the_limit_and_check(int resource) {
  constexpr std::size_t kGiB = std::size_t{1} << 30;
  const int rw = PROT_READ | PROT_WRITE;  // counts against both limits; PROT_NONE only the first
  if (!os::map_internal_sparse(kGiB)) _exit(20);  // some space of our own, whatever ran before
  const rlimit want{4 * kGiB, RLIM_INFINITY};
  if (space_limit::set(resource, &want, nullptr) != 0) _exit(1);
  rlimit seen{};
  if (space_limit::set(resource, nullptr, &seen) != 0 || seen.rlim_cur != 4 * kGiB ||
      seen.rlim_max != RLIM_INFINITY)
    _exit(2);
  // The kernel has our own on top; the program's mappings get what it allowed them.
  const std::size_t lifted = kernel_soft_limit(resource);
  if (lifted <= 4 * kGiB) _exit(3);
  if (!can_map(kGiB, rw) || can_map(5 * kGiB, rw)) _exit(4);
  // A table of our own larger than the program's whole limit still maps, the limit moving with it.
  void* table = os::map_internal_sparse(8 * kGiB);
  if (!table || kernel_soft_limit(resource) != lifted + 8 * kGiB || can_map(5 * kGiB, rw)) _exit(5);
  os::unmap_internal(table, 8 * kGiB);
  if (kernel_soft_limit(resource) != lifted) _exit(6);
  // The hard limit too; a soft limit above it is refused, as the kernel would.
  const rlimit both{4 * kGiB, 4 * kGiB};
  if (space_limit::set(resource, &both, nullptr) != 0) _exit(7);
  if (space_limit::set(resource, nullptr, &seen) != 0 || seen.rlim_cur != 4 * kGiB ||
      seen.rlim_max != 4 * kGiB)
    _exit(8);
  const rlimit over{5 * kGiB, 4 * kGiB};
  if (space_limit::set(resource, &over, nullptr) != EINVAL) _exit(9);
  if (!can_map(kGiB, rw) || can_map(5 * kGiB, rw)) _exit(10);
  // The exit report's room: up to the (lifted) hard limit, then back.
  space_limit::Saved saved{};
  space_limit::raise_for_report(&saved);
  if (!can_map(5 * kGiB, rw)) _exit(11);
  space_limit::restore_after_report(saved);
  if (can_map(5 * kGiB, rw) || space_limit::set(resource, nullptr, &seen) != 0 ||
      seen.rlim_cur != 4 * kGiB)
    _exit(12);
  // Around an exec: the program's own soft limit, then lifted again.
  if (!space_limit::drop_lift() || kernel_soft_limit(resource) != 4 * kGiB) _exit(13);
  space_limit::restore_lift();
  if (kernel_soft_limit(resource) <= 4 * kGiB) _exit(14);
  _exit(0);
}

TEST(SpaceLimit, AnAddressSpaceLimitTheProgramSetsLeavesOurOwnOnTop) {
  EXPECT_EXIT(lower_the_limit_and_check(RLIMIT_AS), testing::ExitedWithCode(0), "");
}

TEST(SpaceLimit, ADataLimitTheProgramSetsLeavesOurOwnOnTop) {
  EXPECT_EXIT(lower_the_limit_and_check(RLIMIT_DATA), testing::ExitedWithCode(0), "");
}

// Lowers the data limit to what the process has now and `more` bytes; false if it could not.
bool limit_data_to_now_and(std::size_t more) {
  std::size_t data_kb = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmData:", 0) == 0) data_kb = std::stoul(line.substr(7));
  const rlimit want{data_kb * 1024 + more, RLIM_INFINITY};
  return data_kb != 0 && space_limit::set(RLIMIT_DATA, &want, nullptr) == 0;
}

// An allocation the system refuses memory for (a data limit) asks it once: the larger classes
// give what they have usable already and are not asked for more. Each of them was asked, each
// refused: some 28 failing mprotect calls for one malloc, against glibc's 2, and a program that
// kept trying under `ulimit -d` took minutes (a review's: 10 million failures, over 200 s).
[[noreturn]] void keep_allocating_under_a_data_limit() {
  if (system_heap::on()) _exit(20);  // the C library's allocator would serve the used-up class
  if (!limit_data_to_now_and(std::size_t{16} << 20)) _exit(21);
  constexpr std::size_t kSize = 1000;
  std::size_t got = 0;
  while (pool::alloc(kSize))
    if (++got > (std::size_t{1} << 20)) _exit(23);  // 1 GB with a 16 MB limit: never refused
  constexpr int kTries = 1000;
  const std::size_t before = pool::stats().refused_commits;
  int failed = 0;
  for (int i = 0; i < kTries; ++i) failed += pool::alloc(kSize) == nullptr;
  const std::size_t refused = pool::stats().refused_commits - before;
  std::fprintf(stderr, "%zu blocks, then %d of %d failed, %zu refusals\n", got, failed, kTries,
               refused);
  _exit(got > 1000 && failed == kTries && refused >= 1 && refused <= kTries ? 0 : 1);
}

TEST(Pool, AnAllocationTheSystemRefusesMemoryForAsksItOnce) {
  // In a process of its own: the blocks and mappings earlier tests left behind would serve it.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(keep_allocating_under_a_data_limit(), testing::ExitedWithCode(0), "");
}

// Once the system refuses a class memory, the larger classes still give the blocks their ranges
// have made usable, and not only their starter slices': the range was passed over whenever an
// earlier class's refusal was already noted (a review's), and malloc failed with memory usable.
[[noreturn]] void use_a_larger_classs_usable_range_under_a_data_limit() {
  if (system_heap::on()) _exit(20);
  // The limit first, as keep_allocating_under_a_data_limit sets it: the pools then make memory
  // usable 64 KiB at a time.
  if (!limit_data_to_now_and(std::size_t{16} << 20)) _exit(21);
  const unsigned larger = size_class(2000);  // 2048: the next class 1024's blocks may come from
  std::vector<void*> kept;
  while (pool::carved_end(larger, pool::kRange) == pool::first_block(larger, pool::kRange)) {
    kept.push_back(pool::alloc(2000));  // its slice used up, and a first refill from its range
    if (kept.size() > 1000) _exit(23);
  }
  const std::uintptr_t carved = pool::carved_end(larger, pool::kRange);
  std::size_t got = 0;
  while (pool::alloc(1000))
    if (++got > (std::size_t{1} << 20)) _exit(24);  // 1 GB with a 16 MB limit: never refused
  const bool used = pool::carved_end(larger, pool::kRange) > carved;
  std::fprintf(stderr, "%zu blocks; class %u's range %s\n", got, larger,
               used ? "used" : "passed over");
  _exit(used ? 0 : 1);
}

TEST(Pool, UnderADataLimitALargerClassGivesWhatItsRangeMadeUsable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a process of its own, as above
  EXPECT_EXIT(use_a_larger_classs_usable_range_under_a_data_limit(), testing::ExitedWithCode(0),
              "");
}

TEST(Pool, LargeReallocsMoveTheMappingOnlyBySteps) {
  // Short of its pages: a block that fills them has one more mapped past it (see
  // APointerPastALargeBlocksEndNeverStartsAnother), which a growth by a byte would fill.
  constexpr std::size_t kAsked = 400 * 1024 - 100;
  auto* p = static_cast<char*>(pool::alloc_large(kAsked, kMinAlign, true));
  ASSERT_NE(p, nullptr);
  std::memset(p, 7, kAsked);
  const std::size_t mapped = pool::usable_size(p);
  ASSERT_EQ(mapped, 400u * 1024);
  // Growing by a page maps a quarter more, so the next few pages need no system call.
  auto* q = static_cast<char*>(pool::realloc_large(p, mapped + 1));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(pool::usable_size(q), mapped + 4096);  // what it asked for, not the mapping
  EXPECT_EQ(q[kAsked - 1], 7);
  EXPECT_EQ(pool::realloc_large(q, mapped + mapped / 4 - 1), q);
  EXPECT_EQ(pool::usable_size(q), mapped + mapped / 4);
  // Shrinking by less than a quarter of the most it asked for keeps the mapping as it is.
  EXPECT_EQ(pool::realloc_large(q, mapped), q);
  EXPECT_EQ(pool::usable_size(q), mapped + mapped / 4);
  // By more, the tail goes back.
  auto* r = static_cast<char*>(pool::realloc_large(q, 200 * 1024));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(pool::usable_size(r), 200u * 1024);
  EXPECT_EQ(r[200 * 1024 - 1], 7);
  EXPECT_EQ(pool::free(r), pool::FreeResult::kFreed);
}

// A block that grows out of its mapping moves into a kept one with room, if there is one, and
// its own mapping is kept in turn: a buffer grown by steps and freed, round after round, works in
// mappings whose pages are there already. Before, every step past its first mapping faulted in
// fresh pages, every round (python3's json.dumps: 3x slower pools only, a user trial).
TEST(Pool, AGrowingBlockMovesIntoAKeptMappingWithRoom) {
  pool::give_back_kept_mappings();
  auto* kept = static_cast<char*>(pool::alloc_large(400 * 1024, kMinAlign));
  ASSERT_NE(kept, nullptr);
  std::memset(kept, 1, 400 * 1024);
  pool::free(kept);
  // 40 KiB: a tenth of the kept mapping, too small to take it (at most 8 times the request).
  auto* p = static_cast<unsigned char*>(pool::alloc_large(40 * 1024, kMinAlign));
  ASSERT_NE(p, nullptr);
  ASSERT_NE(static_cast<void*>(p), static_cast<void*>(kept));
  for (std::size_t i = 0; i < 40 * 1024; ++i) p[i] = static_cast<unsigned char>(i * 7);
  auto* q = static_cast<unsigned char*>(pool::realloc_large(p, 52 * 1024));
  ASSERT_EQ(static_cast<void*>(q), static_cast<void*>(kept));
  EXPECT_EQ(pool::usable_size(q), 52u * 1024);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < 40 * 1024; ++i) wrong += q[i] != static_cast<unsigned char>(i * 7);
  EXPECT_EQ(wrong, 0u);
  // It grows on in place, and the mapping it left serves the next block of its size.
  EXPECT_EQ(pool::realloc_large(q, 380 * 1024), q);
  EXPECT_EQ(pool::alloc_large(40 * 1024, kMinAlign), static_cast<void*>(p));
  pool::free(p);
  pool::free(q);
  // With no kept mapping that has a quarter more room, it is remapped as before.
  pool::give_back_kept_mappings();
  auto* r = static_cast<char*>(pool::alloc_large(40 * 1024, kMinAlign));
  std::memset(r, 3, 40 * 1024);
  auto* s = static_cast<char*>(pool::realloc_large(r, 44 * 1024));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s[40 * 1024 - 1], 3);
  pool::free(s);
}

// A block that fills its pages ends where the kernel may place the next mapping: a pointer one
// past its end (a full buffer's end) then started another block, and the leak scan called that
// one, lost, still reachable (a user trial's 64 KiB buffers). Every large block's mapping has
// room past what was asked, whether it was mapped fresh, kept, aligned, grown or shrunk.
TEST(Pool, APointerPastALargeBlocksEndNeverStartsAnother) {
  pool::give_back_kept_mappings();
  constexpr std::size_t kPage = os::kPageSize;
  std::vector<std::pair<char*, std::size_t>> blocks;  // start, size asked
  const auto add = [&blocks](void* p, std::size_t size) {
    ASSERT_NE(p, nullptr) << size;
    blocks.emplace_back(static_cast<char*>(p), size);
  };
  for (int i = 0; i < 24; ++i) add(pool::alloc(16 * kPage), 16 * kPage);
  for (int i = 0; i < 4; ++i) add(pool::alloc_aligned(16 * kPage, 16 * kPage), 16 * kPage);
  pool::free(blocks[3].first);  // kept, then taken again by a block of its size
  add(pool::alloc(16 * kPage), 16 * kPage);
  blocks[3] = blocks.back();
  blocks.pop_back();
  for (std::size_t k : {0, 5, 9}) {  // grown, shrunk, grown by a page
    const std::size_t size = k == 0 ? 40 * kPage : k == 5 ? 8 * kPage : 17 * kPage;
    add(pool::realloc_large(blocks[k].first, size), size);
    blocks[k] = blocks.back();
    blocks.pop_back();
  }
  std::size_t touching = 0;
  for (const auto& [start, size] : blocks)
    for (const auto& other : blocks) touching += start + size == other.first;
  EXPECT_EQ(touching, 0u);
  for (const auto& block : blocks) EXPECT_EQ(pool::free(block.first), pool::FreeResult::kFreed);
}

TEST(Pool, ImpossibleSizesFail) {
  EXPECT_EQ(pool::alloc(SIZE_MAX), nullptr);
  EXPECT_EQ(pool::alloc(SIZE_MAX / 2), nullptr);
  EXPECT_EQ(pool::alloc_aligned(SIZE_MAX - 4096, 4096), nullptr);
}

TEST(Pool, ForeignPointersAreRecognisedAndLeftAlone) {
  int local = 0;
  int* volatile on_stack_ptr = &local;  // opaque to the optimiser
  void* on_stack = on_stack_ptr;
  void* from_glibc = std::malloc(64);
  EXPECT_EQ(pool::small_class_of(on_stack), -1);
  EXPECT_EQ(pool::usable_size(on_stack), 0u);
  EXPECT_EQ(pool::free(on_stack), pool::FreeResult::kForeign);
  EXPECT_EQ(pool::free(from_glibc), pool::FreeResult::kForeign);
  EXPECT_FALSE(pool::owns_block_start(from_glibc));
  std::free(from_glibc);
}

// In a child of its own: once the C library's allocator serves beside the pools, a pointer not
// theirs is taken to be its block (which ForeignPointersAreRecognisedAndLeftAlone must not see).
TEST(SystemHeap, ServesTheBlocksThePoolsHaveNot) {
  EXPECT_EXIT(
      {
        if (!system_heap::start() || !system_heap::on()) std::_Exit(10);
        auto* p = static_cast<unsigned char*>(system_heap::alloc(100, 16, false));
        if (!p || system_heap::usable_size(p) < 100 || pool::small_class_of(p) != -1)
          std::_Exit(11);
        std::memset(p, 7, 100);
        p = static_cast<unsigned char*>(system_heap::realloc(p, 100000));
        if (!p || p[99] != 7) std::_Exit(12);
        // The pools hand what is not theirs over: its size, a realloc, a free.
        if (pool::usable_size(p) < 100000) std::_Exit(13);
        p = static_cast<unsigned char*>(pool::realloc_large(p, 200));
        if (!p || p[99] != 7 || pool::usable_size(p) < 200) std::_Exit(14);
        if (pool::free(p) != pool::FreeResult::kFreed) std::_Exit(15);
        auto* z = static_cast<unsigned char*>(system_heap::alloc(5000, 4096, true));
        if (!z || reinterpret_cast<std::uintptr_t>(z) % 4096 != 0) std::_Exit(16);
        for (int i = 0; i < 5000; ++i)
          if (z[i] != 0) std::_Exit(17);
        system_heap::release(z);
        // The pools' own blocks stay theirs.
        void* small = pool::alloc(64);
        if (pool::small_class_of(small) < 0 || pool::free(small) != pool::FreeResult::kFreed)
          std::_Exit(18);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(Pool, OwnsBlockStartRejectsInteriorPointers) {
  auto* p = static_cast<char*>(pool::alloc(64));
  EXPECT_TRUE(pool::owns_block_start(p));
  EXPECT_FALSE(pool::owns_block_start(p + 8));
  pool::free(p);
}

TEST(Pool, CrossThreadFreesAreSafe) {
  constexpr int kBlocks = 50000;
  std::vector<void*> blocks(kBlocks);
  std::thread producer([&] {
    for (int i = 0; i < kBlocks; ++i) blocks[i] = pool::alloc(8 + i % 500);
  });
  producer.join();
  std::thread consumer([&] {
    for (void* p : blocks) ASSERT_EQ(pool::free(p), pool::FreeResult::kFreed);
  });
  consumer.join();
  // Everything freed on the consumer went back to the central lists when it exited: a new
  // thread allocating the same again must not need much fresh memory.
  std::size_t committed = pool::stats().small_committed;
  std::thread again([&] {
    std::set<void*> seen;
    for (int i = 0; i < kBlocks; ++i) {
      void* p = pool::alloc(8 + i % 500);
      ASSERT_TRUE(seen.insert(p).second);
    }
    for (void* p : seen) pool::free(p);
  });
  again.join();
  EXPECT_LE(pool::stats().small_committed, committed + (std::size_t{4} << 20));
}

// Blocks freed in random order come back in address order once the thread's own cache is used
// up (the central lists hand out the lowest free blocks first: the class's starter slice's, then
// its range's), so a program that tears a structure down in random order builds the next one in
// memory that lies close together.
TEST(Pool, FreedBlocksComeBackLowestAddressFirst) {
  constexpr std::size_t kSize = 3500;  // class 3584: no other test here uses it
  constexpr int kBlocks = 3000;
  std::thread([&] {
    std::vector<char*> blocks;
    for (int i = 0; i < kBlocks; ++i) blocks.push_back(static_cast<char*>(pool::alloc(kSize)));
    std::vector<char*> sorted = blocks;
    std::sort(sorted.begin(), sorted.end());
    std::uint64_t x = 88172645463325252ull;
    for (int i = kBlocks - 1; i > 0; --i) {  // free in a shuffled order
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::swap(blocks[i], blocks[x % static_cast<std::uint64_t>(i + 1)]);
    }
    for (char* p : blocks) pool::free(p);
    std::vector<char*> again;
    for (int i = 0; i < kBlocks; ++i) again.push_back(static_cast<char*>(pool::alloc(kSize)));
    // The first few are the thread's cache (its latest frees, last in first out, and blocks it
    // had carved but not handed out); the rest must rise, and be the blocks freed: nothing
    // fresh was carved.
    const std::size_t cached = 2 * batch_size(size_class(kSize)) + 1;
    ASSERT_GT(again.size(), cached + 1000);
    const auto order = [](const char* p) {  // the starter slice's first
      return std::pair{reinterpret_cast<std::uintptr_t>(p) < pool::g_region.starter, p};
    };
    for (std::size_t i = cached + 1; i < again.size(); ++i)
      ASSERT_LT(order(again[i - 1]), order(again[i])) << "block " << i << " out of address order";
    std::size_t not_freed = 0;
    for (char* p : again) not_freed += !std::binary_search(sorted.begin(), sorted.end(), p);
    EXPECT_LE(not_freed, cached);
    for (char* p : again) pool::free(p);
  }).join();
}

// How many of the whole pages inside [p, p + bytes) are in memory.
std::size_t resident_pages(const char* p, std::size_t bytes) {
  const auto page = static_cast<std::uintptr_t>(os::kPageSize);
  const std::uintptr_t from = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  const std::uintptr_t to = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(page - 1);
  if (from >= to) return 0;
  std::vector<unsigned char> in((to - from) / page);
  if (mincore(reinterpret_cast<void*>(from), to - from, in.data()) != 0) return SIZE_MAX;
  return static_cast<std::size_t>(
      std::count_if(in.begin(), in.end(), [](unsigned char v) { return v & 1; }));
}

// A class that hands out nothing while the others grow gives back the pages of the blocks it
// holds free; while nothing grows, it keeps them. Without this, a program whose blocks keep
// growing held on to every class it had passed through (grow_blocks: 171 MB against 1.6 MB).
TEST(Pool, AnIdleClassGivesBackThePagesOfItsFreeBlocksWhenOthersGrow) {
  constexpr std::size_t kIdleSize = 12000;  // class 12288: no other test here uses it
  constexpr std::size_t kGrowSize = 13000;  // class 14336: nor this one
  constexpr int kBlocks = 800;              // 9.4 MiB
  std::vector<char*> blocks;
  std::thread([&] {
    for (int i = 0; i < kBlocks; ++i) {
      blocks.push_back(static_cast<char*>(pool::alloc(kIdleSize)));
      std::memset(blocks.back(), 1, kIdleSize);
    }
    for (char* p : blocks) pool::free(p);
  }).join();  // its cache goes back to the central lists
  // Growth counts from the class's last take, within the thread's last refill (which may have
  // grown the class by a step of 1 MiB after it).
  const std::size_t committed = pool::stats().small_committed;
  std::sort(blocks.begin(), blocks.end());
  const std::size_t block = pool::usable_size(blocks[0]);
  auto resident = [&] {
    std::size_t n = 0;
    for (char* p : blocks) n += resident_pages(p, block);
    return n;
  };
  const std::size_t all = resident();
  ASSERT_GT(all, kBlocks * 2u);
  // Another class grows by less than 8 MiB, then serves from its own free blocks: nothing is
  // given back.
  for (int round = 0; round < 3; ++round) {
    std::vector<void*> other;
    for (int i = 0; i < 200; ++i) other.push_back(pool::alloc(kGrowSize));
    for (void* p : other) pool::free(p);
  }
  EXPECT_EQ(resident(), all);
  // The other class grows: the idle one's free blocks go, once the pools have grown by 8 MiB, at
  // the pace they grow (other tests' idle classes may go first).
  std::vector<void*> grown;
  std::size_t grew = 0;
  while (resident() != 0 && grew < (std::size_t{256} << 20)) {
    for (int i = 0; i < 64; ++i) {
      grown.push_back(pool::alloc(kGrowSize));
      std::memset(grown.back(), 2, kGrowSize);
    }
    grew = pool::stats().small_committed - committed;
    if (grew < (std::size_t{7} << 20)) {
      EXPECT_EQ(resident(), all);
    }
  }
  EXPECT_EQ(resident(), 0u);
  EXPECT_GE(grew, std::size_t{7} << 20);
  // And its blocks serve again, reading zeros where the pages went.
  std::size_t not_ours = 0, not_zero = 0;
  std::vector<char*> again;
  for (int i = 0; i < kBlocks; ++i) {
    char* p = static_cast<char*>(pool::alloc(kIdleSize));
    again.push_back(p);
    not_ours += !std::binary_search(blocks.begin(), blocks.end(), p);
    not_zero += std::count(p + 16, p + kIdleSize, 0) != static_cast<std::ptrdiff_t>(kIdleSize - 16);
  }
  EXPECT_LE(not_ours, 2 * batch_size(size_class(kIdleSize)));
  EXPECT_LE(not_zero, 2 * batch_size(size_class(kIdleSize)));
  for (char* p : again) pool::free(p);
  for (void* p : grown) pool::free(p);
}

TEST(Os, PrefaultMakesPagesResidentAndKeepsWhatTheyHold) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  constexpr std::size_t kBytes = 16 * os::kPageSize;
  auto* p = static_cast<char*>(
      mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  p[3 * os::kPageSize + 5] = 'x';
  EXPECT_EQ(resident_pages(p, kBytes), 1u);
  EXPECT_TRUE(os::prefault(p, kBytes));
  EXPECT_EQ(resident_pages(p, kBytes), 16u);
  EXPECT_EQ(p[3 * os::kPageSize + 5], 'x');
  EXPECT_EQ(std::count(p, p + kBytes, 0), static_cast<std::ptrdiff_t>(kBytes - 1));
  munmap(p, kBytes);
}

// From inside a page (a thread's memo, in the tracker's arena): its own pages and the rest of the
// first are faulted in, and prefaulting stays on. madvise's EINVAL for the unaligned address was
// taken for a kernel without the advice, and no later prefault did anything (a review's).
TEST(Os, PrefaultFromInsideAPageServesItAndLaterOnes) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  constexpr std::size_t kBytes = 8 * os::kPageSize;
  auto* p = static_cast<char*>(
      mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_TRUE(os::prefault(p + 1000, 2 * os::kPageSize));
  EXPECT_EQ(resident_pages(p, kBytes), 3u) << "the page of p + 1000 and the two after it";
  EXPECT_TRUE(os::prefault(p + 4 * os::kPageSize, 4 * os::kPageSize)) << "still on";
  EXPECT_EQ(resident_pages(p, kBytes), 7u);
  EXPECT_EQ(std::count(p, p + kBytes, 0), static_cast<std::ptrdiff_t>(kBytes));
  munmap(p, kBytes);
}

bool first_page_resident(const void* p) {
  unsigned char in = 0;
  const auto page = reinterpret_cast<std::uintptr_t>(p) & ~(os::kPageSize - 1);
  return mincore(reinterpret_cast<void*>(page), os::kPageSize, &in) == 0 && (in & 1);
}

// A class that has grown past 256 KiB gets the pages of its fresh blocks faulted in ahead of the
// program's first writes (one system call for 64 KiB, where each page took a fault); one used a
// little costs only the pages it writes. The blocks here are never written.
TEST(Pool, AGrowingClassHasItsFreshPagesFaultedInAhead) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  constexpr std::size_t kSize = 4000, kBlock = 4096;
  const unsigned cls = size_class(kSize);
  std::vector<void*> blocks{pool::alloc(kSize)};  // the pools are set up by the first
  ASSERT_EQ(pool::usable_size(blocks[0]), kBlock);
  // Its range's blocks (the class's first come from its slice of the starter zone).
  const std::uintptr_t start = pool::first_block(cls, pool::kRange);
  const std::uintptr_t carved_before = pool::carved_end(cls, pool::kRange);
  if (carved_before - start <= kBlock) {  // only ours: other tests here use the class a little
    while (blocks.size() < 40) blocks.push_back(pool::alloc(kSize));  // 160 KiB
    EXPECT_EQ(std::count_if(blocks.begin(), blocks.end(), first_page_resident), 0)
        << "pages of a class used a little, never written";
  }
  // Blocks other tests freed come back first (this test's own, on a repeat): 200 carved fresh,
  // past the class's first 320 KiB.
  const std::uintptr_t fresh_from = std::max(carved_before, start + (std::uintptr_t{320} << 10));
  std::size_t fresh = 0, resident = 0;
  while (fresh < 200 && blocks.size() < 20000) {
    blocks.push_back(pool::alloc(kSize));
    const auto addr = reinterpret_cast<std::uintptr_t>(blocks.back());
    if (addr < fresh_from || addr >= pool::g_region.starter) continue;
    ++fresh;
    resident += first_page_resident(blocks.back());
  }
  EXPECT_EQ(fresh, 200u);
  EXPECT_EQ(resident, 200u) << "pages of a growing class's fresh blocks, never written";
  for (void* p : blocks) pool::free(p);
}

// A thread's first refills of a class take 1/8, 1/4 and 1/2 of a batch, then whole batches: a
// thread that allocates a few blocks of a class holds a few, where each took a whole batch
// (1,000 threads allocating 40 blocks each held 300 KB a thread, their batches' pages faulted in
// ahead).
TEST(Pool, AThreadsFirstRefillsOfAClassAreSmall) {
  constexpr std::size_t kSize = 700, kBlock = 768;  // no other test here uses the class
  const unsigned cls = size_class(kSize);
  ASSERT_EQ(batch_size(cls), 42u);
  pool::free(pool::alloc(16));  // the pools are set up
  // All in the class's slice of the starter zone (80 blocks).
  const std::uintptr_t start = pool::first_block(cls, pool::kStarter);
  if (pool::carved_end(cls, pool::kStarter) != start)
    GTEST_SKIP() << "the class was used before (a repeat)";
  std::vector<std::uintptr_t> carved;  // after each refill
  std::vector<void*> blocks;
  std::thread([&] {
    for (int i = 0; i < 37; ++i) {  // 5 + 10 + 21, then one from a whole batch
      const std::uintptr_t before = pool::carved_end(cls, pool::kStarter);
      blocks.push_back(pool::alloc(kSize));
      if (pool::carved_end(cls, pool::kStarter) != before)
        carved.push_back((pool::carved_end(cls, pool::kStarter) - start) / kBlock);
    }
    for (void* p : blocks) pool::free(p);
  }).join();
  EXPECT_EQ(carved, (std::vector<std::uintptr_t>{5, 15, 36, 78}));
}

// A class whose blocks were only ever handed out reads nothing of its bitmap of free blocks: its
// top level's page stays untouched until the first free. It was read at every refill, which
// mapped the zero page there, and the first free then took a second fault and a TLB flush for
// it, in every class a process used (15 us a fault on this VM's current kernel, where a short
// process uses some twenty classes).
TEST(Pool, AClassWithNoFreeBlockLeavesItsBitmapUntouched) {
  constexpr std::size_t kSize = 3000;  // a class no other test here uses (each runs alone)
  const unsigned cls = size_class(kSize);
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(pool::alloc(kSize));
  // The range's (200 blocks are past the starter slice's 21): each level on pages of its own.
  const void* top = pool::free_bitmap_top(cls, pool::kRange);
  ASSERT_NE(top, nullptr);
  EXPECT_FALSE(first_page_resident(top))
      << "refills read the bitmap of a class nothing was freed in";
  for (void* p : blocks) pool::free(p);  // more than the thread's cache keeps: to the lists
  EXPECT_TRUE(first_page_resident(top))
      << "the frees did not reach the bitmap: the test sees nothing";
}

// Blocks larger than a page are left to fault as they are written: a buffer filled only at its
// start would hold all its pages. (Past kPrefaultAfter, as above; never written here.)
TEST(Pool, BlocksLargerThanAPageAreNotFaultedInAhead) {
  if (!kernel_prefaults()) GTEST_SKIP() << "no MADV_POPULATE_WRITE in this kernel";
  constexpr std::size_t kSize = 10000, kBlock = 10240;
  std::vector<char*> blocks;
  while (blocks.size() * kBlock < (std::size_t{1} << 20))
    blocks.push_back(static_cast<char*>(pool::alloc(kSize)));
  std::size_t resident = 0;
  for (char* p : blocks) resident += first_page_resident(p + os::kPageSize);  // its second page
  EXPECT_EQ(resident, 0u);
  for (char* p : blocks) pool::free(p);
}

// Pages given back are those of free blocks only: a page shared with a block in use stays,
// whatever the class (48-byte blocks: 85 to a page).
TEST(Pool, ThePagesOfBlocksInUseAreNeverGivenBack) {
  constexpr std::size_t kSize = 40;        // class 48
  constexpr std::size_t kGrowSize = 7000;  // class 7168: no other test here uses it
  constexpr int kBlocks = 400000;          // 18 MiB
  std::vector<char*> blocks(kBlocks);
  std::vector<bool> live(kBlocks);
  std::thread([&] {
    std::uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < kBlocks; ++i) {
      blocks[i] = static_cast<char*>(pool::alloc(kSize));
      std::memset(blocks[i], static_cast<int>(i % 251) + 1, kSize);
    }
    // Runs of a random length, each kept or freed: some pages wholly free, some shared.
    for (int i = 0; i < kBlocks;) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const int run = 1 + static_cast<int>(x % 300);
      const bool keep = x >> 40 & 1;
      for (int j = i; j < std::min(kBlocks, i + run); ++j) {
        live[j] = keep;
        if (!keep) pool::free(blocks[j]);
      }
      i += run;
    }
  }).join();
  const std::size_t committed = pool::stats().small_committed;
  std::vector<void*> grown;
  while (pool::stats().small_committed < committed + (std::size_t{96} << 20)) {
    grown.push_back(pool::alloc(kGrowSize));
    std::memset(grown.back(), 2, kGrowSize);
  }
  std::size_t damaged = 0, free_pages = 0, free_resident = 0;
  for (int i = 0; i < kBlocks; ++i) {
    if (live[i]) {
      damaged += std::count(blocks[i], blocks[i] + kSize, static_cast<char>(i % 251 + 1)) !=
                 static_cast<std::ptrdiff_t>(kSize);
    } else if (i + 1 < kBlocks && !live[i + 1]) {  // a page wholly inside a run of free blocks?
      const auto at = reinterpret_cast<std::uintptr_t>(blocks[i]);
      const std::uintptr_t page = (at + os::kPageSize - 1) & ~(os::kPageSize - 1);
      int j = i;
      while (j < kBlocks && !live[j] &&
             reinterpret_cast<std::uintptr_t>(blocks[j]) < page + os::kPageSize)
        ++j;
      if (j < kBlocks && reinterpret_cast<std::uintptr_t>(blocks[j]) < page + os::kPageSize)
        continue;
      if (page + os::kPageSize >
          reinterpret_cast<std::uintptr_t>(blocks[j - 1]) + kClassSize[size_class(kSize)])
        continue;
      ++free_pages;
      free_resident += resident_pages(reinterpret_cast<char*>(page), os::kPageSize);
    }
  }
  EXPECT_EQ(damaged, 0u);
  EXPECT_GT(free_pages, 100u);
  EXPECT_EQ(free_resident, 0u);
  for (int i = 0; i < kBlocks; ++i)
    if (live[i]) pool::free(blocks[i]);
  for (void* p : grown) pool::free(p);
}

TEST(Pool, MemoryOfExitedThreadsIsReused) {
  auto churn = [] {
    std::vector<void*> v;
    for (int i = 0; i < 2000; ++i) v.push_back(pool::alloc(256));
    for (void* p : v) pool::free(p);
  };
  std::thread(churn).join();
  std::size_t committed = pool::stats().small_committed;
  for (int t = 0; t < 200; ++t) std::thread(churn).join();
  EXPECT_LE(pool::stats().small_committed, committed + (std::size_t{2} << 20));
}

TEST(Pool, ConcurrentMixedTrafficKeepsBlocksIntact) {
  constexpr int kThreads = 4;
  std::mutex mu;
  std::vector<std::pair<unsigned char*, std::size_t>> shared;
  auto worker = [&](int seed) {
    unsigned x = static_cast<unsigned>(seed) * 2654435761u + 1;
    for (int i = 0; i < 40000; ++i) {
      x = x * 1103515245u + 12345u;
      std::size_t size = 1 + (x >> 8) % 2048;
      auto* p = static_cast<unsigned char*>(pool::alloc(size));
      ASSERT_NE(p, nullptr);
      std::memset(p, static_cast<int>(size & 0xff), size);
      std::pair<unsigned char*, std::size_t> other{nullptr, 0};
      {
        std::lock_guard<std::mutex> lock(mu);
        shared.emplace_back(p, size);
        if (shared.size() > 64) {
          std::size_t k = x % shared.size();
          other = shared[k];
          shared[k] = shared.back();
          shared.pop_back();
        }
      }
      if (other.first) {
        for (std::size_t j = 0; j < other.second; j += 97)
          ASSERT_EQ(other.first[j], other.second & 0xff) << "block corrupted";
        pool::free(other.first);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  for (auto& [p, size] : shared) pool::free(p);
}

// A signal handler that allocates and frees between any two instructions of the pools' own
// allocation or free on its thread (x86's trap flag stops the thread after each one): no block is
// ever handed to two owners. A handler's pop between the thread's read of its bin's count and
// its store of the new one took the same block the thread was taking (a review's program with
// handlers that malloc reported false double frees, and once gave a block two owners).
struct SteppedOwners {
  static constexpr int kMax = 512;
  void* thread[kMax];
  int n_thread = 0;
  void* handler[kMax];
  int n_handler = 0;
  std::size_t size = 0;
  unsigned traps = 0;
  unsigned shared = 0;  // blocks found with two owners
  static bool holds(void* const* v, int n, const void* p) {
    return std::find(v, v + n, p) != v + n;
  }
  void take(void** mine, int* n, void* const* others, int n_others, void* p) {
    if (holds(others, n_others, p) || holds(mine, *n, p)) ++shared;
    if (*n < kMax) mine[(*n)++] = p;
  }
};
SteppedOwners* g_stepped;

void on_step(int) {
  SteppedOwners& o = *g_stepped;
  // Alternately takes two blocks and gives back one, then gives back two and takes one, so the
  // handler's pops and pushes both outnumber the other over a stretch of the thread's call.
  const unsigned k = o.traps++ % 6;
  if (k < 2 || k == 5) {
    if (void* p = pool::alloc(o.size)) o.take(o.handler, &o.n_handler, o.thread, o.n_thread, p);
  } else if (o.n_handler > 0) {
    pool::free(o.handler[--o.n_handler]);
  }
}

inline void step_on() { asm volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc"); }
inline void step_off() { asm volatile("pushfq; andq $-0x101, (%%rsp); popfq" ::: "memory", "cc"); }

// SIGTRAP (the trap flag's signal after each stepped instruction) goes to handler while in scope.
class StepHandler {
 public:
  explicit StepHandler(void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    installed_ = sigaction(SIGTRAP, &sa, &old_) == 0;
  }
  ~StepHandler() {
    if (installed_) sigaction(SIGTRAP, &old_, nullptr);
  }
  bool installed() const { return installed_; }
  StepHandler(const StepHandler&) = delete;
  StepHandler& operator=(const StepHandler&) = delete;

 private:
  struct sigaction old_ {};
  bool installed_;
};

TEST(Pool, ASignalHandlerBetweenAnyTwoInstructionsNeverSharesABlock) {
  const StepHandler trap(on_step);
  ASSERT_TRUE(trap.installed());
  for (std::size_t size : {48, 3000}) {  // batches of different lengths: refills and flushes too
    SteppedOwners owners;
    owners.size = size;
    g_stepped = &owners;
    std::thread([&] {
      // Long runs of allocations, then of frees: through empty and full bins, both ways.
      const int run = static_cast<int>(3 * batch_size(size_class(size)));
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < run && owners.n_thread < SteppedOwners::kMax; ++i) {
          step_on();
          void* p = pool::alloc(size);
          step_off();
          owners.take(owners.thread, &owners.n_thread, owners.handler, owners.n_handler, p);
        }
        while (owners.n_thread > 0) {
          void* p = owners.thread[--owners.n_thread];
          step_on();
          pool::free(p);
          step_off();
        }
      }
      while (owners.n_handler > 0) pool::free(owners.handler[--owners.n_handler]);
    }).join();
    EXPECT_GT(owners.traps, 2000u) << size;  // it did step
    EXPECT_EQ(owners.shared, 0u) << size;
    // And no block sits in a cache twice: a run of allocations is all distinct blocks.
    std::thread([&] {
      std::set<void*> seen;
      std::vector<void*> got;
      for (int i = 0; i < 4 * SteppedOwners::kMax; ++i) {
        got.push_back(pool::alloc(size));
        EXPECT_TRUE(seen.insert(got.back()).second) << size << " " << got.back();
      }
      for (void* p : got) pool::free(p);
    }).join();
  }
}

// A handler that allocates while its thread registers (its first allocation, stepped) gets its
// block without a cache of its own: a second registration there took a second slot array and
// cached blocks in it, both leaked when the first one went on (a review's: 6 MB over 400 threads).
// The handler allocates at one trap only (a thread's first, at its first trap, would register the
// thread before its own call began); each thread gets a later one, across its first call.
thread_local int t_traps;
int g_allocate_at;
void on_step_allocate(int) {
  if (++t_traps == g_allocate_at) pool::free(pool::alloc(64));
}

TEST(Pool, AHandlerInsideItsThreadsRegistrationTakesNoCacheOfItsOwn) {
  const StepHandler trap(on_step_allocate);
  ASSERT_TRUE(trap.installed());
  auto first_allocation_stepped = [] {
    step_on();
    void* p = pool::alloc(48);
    step_off();
    pool::free(p);
  };
  std::thread(first_allocation_stepped).join();  // the arrays exist, and are spare now
  const std::size_t before = os::internal_ranges(nullptr, 0);
  for (int i = 0; i < 100; ++i) {
    g_allocate_at = 2 + 14 * i;
    std::thread(first_allocation_stepped).join();
  }
  EXPECT_EQ(os::internal_ranges(nullptr, 0), before);  // before: a mapping more (leaked arrays)
}

// A handler that longjmps out of its thread's bins leaves them marked in use: the thread then
// works from the central lists, its cache untouched, and nothing it is given is given twice.
TEST(Pool, AThreadWhoseBinsStayMarkedInUseStillAllocatesDistinctBlocks) {
  std::thread([] {
    pool::free(pool::alloc(48));  // registered
    const unsigned cls = size_class(48);
    const std::uint32_t cached = pool::tl_cache.bins[cls].count;
    pool::tl_cache.in_bins = true;  // as a handler's longjmp out of pop_cached leaves it
    std::set<void*> seen;
    std::vector<void*> got;
    for (int i = 0; i < 2000; ++i) {
      got.push_back(pool::alloc(48));
      EXPECT_TRUE(seen.insert(got.back()).second) << got.back();
    }
    for (void* p : got) pool::free(p);
    EXPECT_EQ(pool::tl_cache.bins[cls].count, cached);  // its cache untouched meanwhile
    pool::tl_cache.in_bins = false;
  }).join();
}

}  // namespace
}  // namespace heapledger::detail
