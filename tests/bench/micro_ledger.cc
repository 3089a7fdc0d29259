// Microbenchmarks of the ledger: insert+erase of one block into a ledger holding few blocks
// (hot cache) and one holding 1,000,000 live blocks (the lookups miss cache, as in a big
// program); release() with the default 16 MiB quarantine; single and two threads.
#include <benchmark/benchmark.h>

#include <memory>

#include <cstdint>

#include "tracker/ledger.h"

namespace heapledger::detail {
namespace {

constexpr std::uintptr_t kSpacing = 48;  // blocks of a 32..48-byte class

Ledger& ledger_with(std::int64_t live) {
  static Ledger* empty = new Ledger;
  static Ledger* full = [] {
    auto* l = new Ledger;
    for (std::uintptr_t i = 0; i < 1000000; ++i)
      l->insert(0x7f0000000000 + i * kSpacing, Record(32, AllocKind::kMalloc, 1, i, 1));
    return l;
  }();
  return live ? *full : *empty;
}

void InsertErase(benchmark::State& state) {
  Ledger& ledger = ledger_with(state.range(0));
  // Addresses walk a 64 MiB range per thread, so consecutive blocks land in different shards.
  std::uintptr_t base =
      0x100000000 + static_cast<std::uintptr_t>(state.thread_index()) * (1ull << 32);
  std::uintptr_t i = 0;
  Record out;
  for (auto _ : state) {
    std::uintptr_t addr = base + (i++ % (1u << 20)) * kSpacing;
    ledger.insert(addr, Record(32, AllocKind::kMalloc, 1, i, 7));
    benchmark::DoNotOptimize(ledger.erase(addr, &out));
  }
}

void InsertRelease(benchmark::State& state) {
  static Ledger* ledger = [] {
    auto* l = new Ledger;
    l->set_quarantine(16u << 20, (16u << 20) / 16, nullptr);
    return l;
  }();
  // Real memory: a quarantined block carries the record of its free in its first bytes.
  constexpr std::size_t kBlocks = 1u << 20;
  std::unique_ptr<char[]> arena(new char[kBlocks * kSpacing]);
  auto base = reinterpret_cast<std::uintptr_t>(arena.get());
  std::uintptr_t i = 0;
  for (auto _ : state) {
    std::uintptr_t addr = base + (i++ % kBlocks) * kSpacing;
    ledger->insert(addr, Record(32, AllocKind::kMalloc, 1, i, 7));
    Release rel;
    ledger->release(addr, 9, &rel);
    benchmark::DoNotOptimize(rel.n_evicted);
  }
}

BENCHMARK(InsertErase)->ArgName("live_1M")->Arg(0)->Arg(1);
BENCHMARK(InsertErase)->ArgName("live_1M")->Arg(0)->Arg(1)->Threads(2);
BENCHMARK(InsertRelease);
BENCHMARK(InsertRelease)->Threads(2);

}  // namespace
}  // namespace heapledger::detail

BENCHMARK_MAIN();
