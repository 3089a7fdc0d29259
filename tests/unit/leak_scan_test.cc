// The leak scan on real pool blocks in this test process: every reachability class, memcheck's
// length64 heuristic, and a block held only by another thread's stack (which must be stopped).
// The ledger (internal memory) is the only place that knows the lost blocks' addresses.
#include "tracker/leak_scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shim/pool.h"
#include "tracker/ledger.h"

namespace heapledger::detail {
namespace {

void* volatile g_root;              // a global holding a block
char* volatile g_interior;          // a global pointing into the middle of a block
char* volatile g_counted;           // a global pointing 8 bytes into a length-prefixed block
std::uintptr_t g_hidden[8];         // addresses kept disguised, so they are not pointers

std::uintptr_t hide(void* p) { return reinterpret_cast<std::uintptr_t>(p) ^ 0xA5A5A5A5A5A5A5A5ull; }
void* unhide(std::uintptr_t v) { return reinterpret_cast<void*>(v ^ 0xA5A5A5A5A5A5A5A5ull); }

struct Fixture {
  Ledger ledger;
  void* track(std::size_t size, std::uint32_t stack = 0) {
    void* p = pool::alloc(size);
    std::memset(p, 0, size);
    ledger.insert(reinterpret_cast<std::uintptr_t>(p),
                  Record(size, AllocKind::kMalloc, 1, 0, stack));
    return p;
  }
  const ScannedBlock& block_of(LeakScan& scan, void* p) {
    for (std::size_t i = 0; i < scan.size(); ++i)
      if (scan.block(i).start == reinterpret_cast<std::uintptr_t>(p)) return scan.block(i);
    ADD_FAILURE() << "block not scanned";
    static const ScannedBlock none{};
    return none;
  }
  Reach reach_of(LeakScan& scan, void* p) { return block_of(scan, p).reach; }
};

__attribute__((noinline)) void build_blocks(Fixture& f) {
  // A lost list: head -> a -> b, nothing points to head (allocated from stacks 7, 8, 9).
  void** b = static_cast<void**>(f.track(32, 9));
  void** a = static_cast<void**>(f.track(32, 8));
  void** head = static_cast<void**>(f.track(32, 7));
  head[0] = a;
  a[0] = b;
  g_hidden[0] = hide(head), g_hidden[1] = hide(a), g_hidden[2] = hide(b);
  g_root = f.track(48);
  char* interior = static_cast<char*>(f.track(80));
  g_interior = interior + 16;
  g_hidden[3] = hide(interior);
  // sqlite-style: the first word holds the length of the rest, the program keeps p + 8.
  auto* counted = static_cast<std::uint64_t*>(f.track(72));
  counted[0] = 64;
  g_counted = reinterpret_cast<char*>(counted) + 8;
  g_hidden[4] = hide(counted);
}

TEST(LeakScan, ClassifiesEveryKind) {
  static Fixture f;
  build_blocks(f);
  LeakScan scan;
  RootPolicy policy;
  ASSERT_TRUE(scan.run(f.ledger, policy,
                       OwnRoots(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)))));
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[0])), Reach::kDefinite);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[1])), Reach::kIndirect);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[2])), Reach::kIndirect);
  // Both inner blocks are held by the list's head (whichever of them the scan met first).
  EXPECT_EQ(f.block_of(scan, unhide(g_hidden[1])).holder, 7u);
  EXPECT_EQ(f.block_of(scan, unhide(g_hidden[2])).holder, 7u);
  EXPECT_EQ(f.block_of(scan, unhide(g_hidden[0])).holder, kNoHolder);
  EXPECT_EQ(f.reach_of(scan, g_root), Reach::kReachable);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[3])), Reach::kPossible);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[4])), Reach::kReachable) << "length64 heuristic";
  EXPECT_EQ(scan.stats().threads, 0u);
}

TEST(LeakScan, BlocksOnARunningThreadsStackAreReachableAndItIsStopped) {
  static Fixture f;
  std::atomic<int> phase{0};
  std::thread holder([&] {
    void* volatile held = f.track(96);  // only this frame refers to it
    g_hidden[5] = hide(held);
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
  });
  while (phase.load() != 1) std::this_thread::yield();
  void* lost = f.track(40);
  g_hidden[6] = hide(lost);
  lost = nullptr;
  LeakScan scan;
  ASSERT_TRUE(scan.run(f.ledger, RootPolicy{},
                       OwnRoots(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)))));
  phase = 2;
  holder.join();
  EXPECT_GE(scan.stats().threads, 1u);
  EXPECT_EQ(scan.stats().threads, scan.stats().threads_stopped);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[5])), Reach::kReachable);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[6])), Reach::kDefinite);
}

// The mappings the scan read stay with it for the report's symbolizer (which read them again),
// whole: every line, this thread's stack among them.
TEST(LeakScan, KeepsTheMapsItReadForTheReport) {
  static Fixture f;
  f.track(24);
  LeakScan scan;
  EXPECT_EQ(scan.maps(), nullptr);
  ASSERT_TRUE(scan.run(f.ledger, RootPolicy{},
                       OwnRoots(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)))));
  ASSERT_NE(scan.maps(), nullptr);
  const std::string_view maps(scan.maps(), scan.maps_size());
  EXPECT_EQ(maps.back(), '\n');
  EXPECT_NE(maps.find("[stack]"), std::string_view::npos);
  char exe[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof exe - 1), 0);
  EXPECT_NE(maps.find(exe), std::string_view::npos) << "the test program's own mappings";
}

// A block held only by a mapping listed past 16 MiB of /proc/self/maps text (the scan's buffer
// at most) is still reached: 6,000 mappings of a file whose path is 3,000 characters long come
// first in address order, the root after them. Before, no root past the cut was scanned and the
// block came out definitely lost.
TEST(LeakScan, ARootListedPastTheMapsBufferIsScanned) {
  static Fixture f;
  char dir[] = "/tmp/heapledger-maps-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = dir;
  std::vector<std::string> made;
  while (path.size() < 3000) {
    path += '/' + std::string(240, 'd');
    ASSERT_EQ(mkdir(path.c_str(), 0700), 0) << std::strerror(errno);
    made.push_back(path);
  }
  path += "/page";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  // One reservation, so that the file's mappings (every other page: separate lines) lie in order
  // below the root, its last page.
  constexpr std::size_t kFileMappings = 6000, kPage = 4096;
  const std::size_t span = (2 * kFileMappings + 1) * kPage;
  auto* base =
      static_cast<char*>(mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  for (std::size_t i = 0; i < kFileMappings; ++i)
    ASSERT_NE(mmap(base + 2 * i * kPage, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0),
              MAP_FAILED);
  close(fd);
  auto* root =
      static_cast<void**>(mmap(base + 2 * kFileMappings * kPage, kPage, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  ASSERT_NE(root, MAP_FAILED);
  root[0] = f.track(56);
  g_hidden[7] = hide(root[0]);
  LeakScan scan;
  ASSERT_TRUE(scan.run(f.ledger, RootPolicy{},
                       OwnRoots(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)))));
  // The premise: the text is longer than the scan's buffer (it is then not kept for the report).
  EXPECT_EQ(scan.maps_size(), 0u);
  EXPECT_EQ(f.reach_of(scan, unhide(g_hidden[7])), Reach::kReachable);
  munmap(base, span);
  unlink(path.c_str());
  for (auto it = made.rbegin(); it != made.rend(); ++it) rmdir(it->c_str());
  rmdir(dir);
}

struct BaseA {
  virtual ~BaseA() = default;
  virtual int a() { return 1; }
  std::uint64_t x = 0;
};
struct BaseB {
  virtual ~BaseB() = default;
  virtual int b() { return 2; }
  std::uint64_t y = 0;
};
struct Both : BaseA, BaseB {
  int a() override { return 3; }
  int b() override { return 4; }
};
BaseB* volatile g_second_base;  // the only pointer to a Both: to its BaseB part, 16 bytes in

// memcheck's multipleinheritance heuristic (a pointer to a base-class part, with vtable pointers
// there and at the block's start) needs the modules' read-only and code ranges. 5,000 read-only
// mappings of a file below the test program, so listed before its own, used to fill the 4,096
// ranges kept, and its vtables were not known: the object came out possibly lost.
TEST(LeakScan, ModulesPastManyFileMappingsStillHaveVtables) {
  static Fixture f;
  void* block = f.track(sizeof(Both));
  g_second_base = static_cast<BaseB*>(new (block) Both);
  ASSERT_NE(static_cast<void*>(g_second_base), block);
  char path[] = "/tmp/heapledger-ranges-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  unlink(path);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  constexpr std::size_t kMappings = 5000, kPage = 4096;
  const std::size_t span = 2 * kMappings * kPage;
  // Low in the address space, below the program (a PIE is mapped near 0x55..., 94 TB up).
  auto* base =
      static_cast<char*>(mmap(reinterpret_cast<void*>(std::uintptr_t{1} << 32), span, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  ASSERT_NE(base, MAP_FAILED) << std::strerror(errno);
  ASSERT_LT(reinterpret_cast<std::uintptr_t>(base),
            reinterpret_cast<std::uintptr_t>(&g_second_base));
  for (std::size_t i = 0; i < kMappings; ++i)
    ASSERT_NE(mmap(base + 2 * i * kPage, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0),
              MAP_FAILED);
  close(fd);
  LeakScan scan;
  ASSERT_TRUE(scan.run(f.ledger, RootPolicy{},
                       OwnRoots(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)))));
  EXPECT_EQ(f.reach_of(scan, block), Reach::kReachable);
  munmap(base, span);
}

TEST(OwnRoots, AStackCountsFromTheLowestLiveFrameOnIt) {
  // exit() from a handler on a signal stack at 0x10000-0x20000 that interrupted the thread's own
  // stack (0x100000-0x200000) at 0x180000, itself interrupted there by a second signal at 0x17f000.
  OwnRoots own(0x1f000);
  InterruptedFrame outer{.sp = 0x180000, .ip = 0, .rax = 0, .regs = {1, 2, 3}, .n_regs = 3};
  InterruptedFrame inner{.sp = 0x17f000, .ip = 0, .rax = 0, .regs = {4, 5}, .n_regs = 2};
  own.add_interrupted(outer);
  own.add_interrupted(inner);
  EXPECT_EQ(own.lowest_in(0x10000, 0x20000), 0x1f000u);
  EXPECT_EQ(own.lowest_in(0x100000, 0x200000), 0x17f000u - 128) << "the red zone is live";
  EXPECT_EQ(own.lowest_in(0x20000, 0x100000), 0u);
  EXPECT_EQ(std::vector<std::uintptr_t>(own.registers, own.registers + own.n_registers),
            (std::vector<std::uintptr_t>{1, 2, 3, 4, 5}));
  for (int i = 0; i < 8; ++i) own.add_interrupted(outer);  // past kMaxStacks: left out
  EXPECT_EQ(own.n_from, OwnRoots::kMaxStacks);
}

TEST(OwnRoots, AFrameBlockedInASystemCallHasNoRedZone) {
  // On the `syscall` (to be restarted), or just past it with -EINTR: blocked there, nothing in
  // use below the stack pointer. Just past one that returned (raise()'s tgkill): as any frame.
  alignas(16) static const unsigned char code[] = {0x90, 0x90, 0x90, 0x0f, 0x05, 0x90};
  const auto at = reinterpret_cast<std::uintptr_t>(code + 3), past = at + 2;
  OwnRoots own(0x1f000);
  own.add_interrupted(
      InterruptedFrame{.sp = 0x100000, .ip = at, .rax = 34, .regs = {}, .n_regs = 0});
  own.add_interrupted(InterruptedFrame{.sp = 0x200000,
                                       .ip = past,
                                       .rax = static_cast<std::uintptr_t>(-EINTR),
                                       .regs = {},
                                       .n_regs = 0});
  own.add_interrupted(
      InterruptedFrame{.sp = 0x300000, .ip = past, .rax = 0, .regs = {}, .n_regs = 0});
  EXPECT_EQ(own.lowest_in(0x100000 - 4096, 0x100000 + 4096), 0x100000u);
  EXPECT_EQ(own.lowest_in(0x200000 - 4096, 0x200000 + 4096), 0x200000u);
  EXPECT_EQ(own.lowest_in(0x300000 - 4096, 0x300000 + 4096), 0x300000u - 128);
}

}  // namespace
}  // namespace heapledger::detail
