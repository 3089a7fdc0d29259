// What an event time costs: the precise clock against the kernel's tick clock, both read through
// the vDSO. The tracker stamps every allocation and free, so this is paid twice per pair.
#include <benchmark/benchmark.h>
#include <time.h>

namespace {

template <clockid_t kClock>
void ClockGettime(benchmark::State& state) {
  timespec ts;
  for (auto _ : state) {
    clock_gettime(kClock, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(ClockGettime<CLOCK_MONOTONIC>)->Name("ClockGettime/monotonic");
BENCHMARK(ClockGettime<CLOCK_MONOTONIC_COARSE>)->Name("ClockGettime/monotonic_coarse");

}  // namespace

BENCHMARK_MAIN();
