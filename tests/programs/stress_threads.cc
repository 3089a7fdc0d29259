// Allocator stress: T threads (default 16) x N operations (default 200000) of malloc, calloc,
// new[] and realloc growth, sizes 1..4096 plus rare 64 KiB..1 MiB blocks. Every block is filled
// with its own byte and checked before it is grown or freed; about a quarter of the blocks are
// freed by another thread through a shared queue. Exit status 0 only if every check passed.
// Usage: stress_threads [threads] [ops_per_thread]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

enum class How { kMalloc, kCalloc, kNewArray };

struct Block {
  unsigned char* p = nullptr;
  std::size_t n = 0;
  unsigned char value = 0;
  How how = How::kMalloc;
};

std::atomic<long> g_failures{0};

void fail(const char* what) {
  if (g_failures.fetch_add(1) < 10) std::fprintf(stderr, "stress_threads: FAIL %s\n", what);
}

// Every byte equals the first, which is `value`: an overlapping memcmp checks the whole block fast.
bool uniform(const unsigned char* p, std::size_t n, unsigned char value) {
  return n == 0 || (p[0] == value && std::memcmp(p, p + 1, n - 1) == 0);
}

void release(const Block& b) {
  if (!uniform(b.p, b.n, b.value)) fail("block contents changed before free");
  if (b.how == How::kNewArray) {
    delete[] b.p;
  } else {
    std::free(b.p);
  }
}

// Blocks handed from one thread to another, to be checked and freed there.
class SharedQueue {
 public:
  bool push(const Block& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.size() >= 4096) return false;
    blocks_.push_back(b);
    return true;
  }
  bool pop(Block* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.empty()) return false;
    *out = blocks_.back();
    blocks_.pop_back();
    return true;
  }

 private:
  std::mutex mu_;
  std::vector<Block> blocks_;  // guarded by mu_
};

std::size_t random_size(std::mt19937& rng) {
  if (rng() % 1000 == 0) return (64u << 10) + rng() % ((1u << 20) - (64u << 10) + 1);
  return 1 + rng() % 4096;
}

Block allocate(std::mt19937& rng) {
  Block b;
  b.n = random_size(rng);
  b.value = static_cast<unsigned char>(1 + rng() % 255);
  b.how = static_cast<How>(rng() % 3);
  switch (b.how) {
    case How::kMalloc:
      b.p = static_cast<unsigned char*>(std::malloc(b.n));
      break;
    case How::kCalloc:
      b.p = static_cast<unsigned char*>(std::calloc(1, b.n));
      if (b.p && !uniform(b.p, b.n, 0)) fail("calloc block not zeroed");
      break;
    case How::kNewArray:
      b.p = new unsigned char[b.n];
      break;
  }
  if (!b.p) {
    fail("allocation returned null");
    return Block{};
  }
  std::memset(b.p, b.value, b.n);
  return b;
}

void grow(Block& b, std::mt19937& rng) {
  std::size_t n = b.n * 2 + rng() % 64;
  if (n > (1u << 20)) n = 1 + rng() % 4096;  // shrink instead of growing past 1 MiB
  auto* p = static_cast<unsigned char*>(std::realloc(b.p, n));
  if (!p) {
    fail("realloc returned null");
    return;
  }
  if (!uniform(p, n < b.n ? n : b.n, b.value)) fail("realloc lost contents");
  std::memset(p, b.value, n);
  b.p = p;
  b.n = n;
}

void worker(unsigned index, long ops, SharedQueue& queue) {
  std::mt19937 rng(index * 7919 + 1);
  std::vector<Block> slots(256);
  for (long i = 0; i < ops; ++i) {
    Block& slot = slots[rng() % slots.size()];
    unsigned roll = rng() % 100;
    if (!slot.p) {
      slot = allocate(rng);
    } else if (roll < 10 && slot.how != How::kNewArray) {
      grow(slot, rng);
    } else if (roll < 35 && queue.push(slot)) {
      slot = Block{};
    } else {
      release(slot);
      slot = Block{};
    }
    Block other;
    if (rng() % 4 == 0 && queue.pop(&other)) release(other);
  }
  for (const Block& b : slots)
    if (b.p) release(b);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 16;
  long ops = argc > 2 ? std::atol(argv[2]) : 200000;
  SharedQueue queue;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker, t, ops, std::ref(queue));
  for (auto& th : pool) th.join();
  for (Block b; queue.pop(&b);) release(b);
  long failures = g_failures.load();
  std::printf("stress_threads: %u threads x %ld ops, %ld failures\n", threads, ops, failures);
  return failures == 0 ? 0 : 1;
}
