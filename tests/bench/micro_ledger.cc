// Microbenchmarks of the ledger: insert+erase of one block into a ledger holding few blocks
// (hot cache) and one holding 1,000,000 live blocks (the lookups miss cache, as in a big
// program), for addresses the pools did not hand out (the sharded map) and for the pools' blocks
// (records at a slot the address names); release() followed by the default 16 MiB quarantine's
// hold (blocks that leave it are not handed anywhere); single and two threads.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include <cstdint>

#include "shim/pool.h"
#include "tracker/ledger.h"
#include "tracker/quarantine.h"

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

// Blocks of the pools' 48-byte class: 1,000,000 kept live (live_1M:1) or none, and 2^20 per
// thread that are inserted and erased in turn.
void InsertErasePoolBlock(benchmark::State& state) {
  static Ledger* ledger = new Ledger;
  static std::vector<std::uintptr_t>* kept = [] {
    auto* v = new std::vector<std::uintptr_t>;
    for (int i = 0; i < 1000000; ++i) {
      v->push_back(reinterpret_cast<std::uintptr_t>(pool::alloc(kSpacing)));
      ledger->insert(v->back(), Record(kSpacing, AllocKind::kMalloc, 1, i, 1));
    }
    return v;
  }();
  if (state.range(0) == 0 && state.thread_index() == 0)
    for (std::uintptr_t addr : *kept) ledger->erase(addr, nullptr);
  std::vector<std::uintptr_t> mine;
  for (int i = 0; i < (1 << 20); ++i) mine.push_back(reinterpret_cast<std::uintptr_t>(pool::alloc(kSpacing)));
  std::size_t i = 0;
  Record out;
  for (auto _ : state) {
    std::uintptr_t addr = mine[i++ & ((1u << 20) - 1)];
    ledger->insert(addr, Record(32, AllocKind::kMalloc, 1, i, 7));
    benchmark::DoNotOptimize(ledger->erase(addr, &out));
  }
  for (std::uintptr_t addr : mine) pool::free(reinterpret_cast<void*>(addr));
}

void InsertRelease(benchmark::State& state) {
  static Ledger* ledger = new Ledger;
  static Quarantine* quarantine = [] {
    auto* q = new Quarantine;
    q->init(16u << 20, 1u << 16, {nullptr, [](const void*, const std::uintptr_t*) -> std::size_t { return 0; }, [](void*) {}});
    return q;
  }();
  // Real memory: a block outside the pools (its record in the map) carries the quarantine's
  // record of its free in its first bytes.
  constexpr std::size_t kBlocks = 1u << 20;
  std::unique_ptr<char[]> arena(new char[kBlocks * kSpacing]);
  auto base = reinterpret_cast<std::uintptr_t>(arena.get());
  Quarantine::Local local;
  std::uintptr_t i = 0;
  for (auto _ : state) {
    std::uintptr_t addr = base + (i++ % kBlocks) * kSpacing;
    ledger->insert(addr, Record(32, AllocKind::kMalloc, 1, i, 7));
    Release rel;
    ledger->release(addr, &rel);
    bool held = quarantine->hold(local, addr, rel.record.size(), FreedBlock{rel.record.stack(), 9});
    benchmark::DoNotOptimize(held);
  }
  quarantine->thread_exit(local);
}

BENCHMARK(InsertErase)->ArgName("live_1M")->Arg(0)->Arg(1);
BENCHMARK(InsertErase)->ArgName("live_1M")->Arg(0)->Arg(1)->Threads(2);
BENCHMARK(InsertErasePoolBlock)->ArgName("live_1M")->Arg(1)->Arg(0);
BENCHMARK(InsertErasePoolBlock)->ArgName("live_1M")->Arg(0)->Threads(2);
BENCHMARK(InsertRelease);
BENCHMARK(InsertRelease)->Threads(2);

}  // namespace
}  // namespace heapledger::detail

BENCHMARK_MAIN();
