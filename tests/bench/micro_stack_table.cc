// Microbenchmarks of stack interning: a stack already in the table (the common case: allocations
// from a known call site) and stacks seen for the first time (record made, frames resolved to
// modules), at 10 and 30 frames; single and two threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "tracker/modules.h"
#include "tracker/stack_table.h"

namespace heapledger::detail {
namespace {

// Frames that look real: return addresses inside this executable, so module lookups hit.
std::vector<std::uintptr_t> make_stack(std::uint32_t depth, std::uint64_t salt) {
  std::vector<std::uintptr_t> frames(depth);
  auto base = reinterpret_cast<std::uintptr_t>(&make_stack);
  for (std::uint32_t i = 0; i < depth; ++i) frames[i] = base + 16 * ((salt * 131 + i * 7) % 4096);
  return frames;
}

StackTable& shared_table() {
  static ModuleMap* modules = new ModuleMap;
  static StackTable* table = [] {
    auto* t = new StackTable;
    t->init(modules);
    return t;
  }();
  return *table;
}

void InternHit(benchmark::State& state) {
  const auto depth = static_cast<std::uint32_t>(state.range(0));
  StackTable& table = shared_table();
  // A few hundred distinct live call sites, visited in turn, as a program would.
  std::vector<std::vector<std::uintptr_t>> stacks;
  for (std::uint64_t s = 0; s < 256; ++s) {
    stacks.push_back(make_stack(depth, s * 1000 + depth));
    table.intern(stacks.back().data(), depth);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& st = stacks[i++ & 255];
    benchmark::DoNotOptimize(table.intern(st.data(), depth));
  }
}

// Every iteration a stack the table has never seen. A fresh table per run keeps it far from
// full; the iteration count is fixed for the same reason.
void InternNew(benchmark::State& state) {
  const auto depth = static_cast<std::uint32_t>(state.range(0));
  static ModuleMap* modules = new ModuleMap;
  auto* table = new StackTable;  // tables are never unmapped; one per run is fine here
  table->init(modules);
  std::vector<std::uintptr_t> frames = make_stack(depth, 7);
  std::uint64_t n = 0;
  for (auto _ : state) {
    frames[0] = 0x100000 + 16 * n++;  // unique innermost frame (an unknown module: one miss)
    frames[1] = reinterpret_cast<std::uintptr_t>(&make_stack) + (n % 65536);
    benchmark::DoNotOptimize(table->intern(frames.data(), depth));
  }
  state.counters["table_bytes"] = static_cast<double>(table->memory_bytes());
}

BENCHMARK(InternHit)->Arg(10)->Arg(30);
BENCHMARK(InternHit)->Arg(10)->Arg(30)->Threads(2);
BENCHMARK(InternNew)->Arg(10)->Arg(30)->Iterations(200000);

}  // namespace
}  // namespace heapledger::detail

BENCHMARK_MAIN();
