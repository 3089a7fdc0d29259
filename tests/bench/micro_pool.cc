// Microbenchmarks of the pool fast path: one alloc+free pair per size class, a large (mapped)
// block, and glibc's malloc/free on the same sizes for reference; single and two threads.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "shim/pool.h"

namespace heapledger::detail {
namespace {

const std::size_t kSizes[] = {16, 64, 256, 1024, 8192, 32768, std::size_t{1} << 20};

void PoolAllocFree(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  pool::free(pool::alloc(size));  // registers the thread, fills its cache
  for (auto _ : state) {
    void* p = pool::alloc(size);
    benchmark::DoNotOptimize(p);
    pool::free(p);
  }
  state.SetLabel(size > kMaxSmallSize ? "large (mapped)" : "small class");
}

void GlibcMallocFree(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(size);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}

// A batch of 64 allocations then 64 frees: the cache is walked, not just its head reused.
void PoolBatch64(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  void* blocks[64];
  for (auto _ : state) {
    for (void*& b : blocks) b = pool::alloc(size);
    benchmark::DoNotOptimize(blocks);
    for (void* b : blocks) pool::free(b);
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

void SizeArgs(benchmark::internal::Benchmark* b) {
  for (std::size_t s : kSizes) b->Arg(static_cast<std::int64_t>(s));
}

BENCHMARK(PoolAllocFree)->Apply(SizeArgs);
BENCHMARK(PoolAllocFree)->Arg(64)->Arg(1024)->Threads(2);
BENCHMARK(GlibcMallocFree)->Apply(SizeArgs);
BENCHMARK(PoolBatch64)->Arg(64)->Arg(1024);

}  // namespace
}  // namespace heapledger::detail

BENCHMARK_MAIN();
