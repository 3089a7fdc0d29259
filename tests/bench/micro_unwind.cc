// Microbenchmarks of stack capture: libunwind's unw_backtrace (what the tracker's runtime calls,
// with the per-thread cache it sets) at ~10 and ~30 frames, and glibc's backtrace() for reference.
#define UNW_LOCAL_ONLY
#include <execinfo.h>
#include <libunwind.h>

#include <benchmark/benchmark.h>

namespace {

using Capture = int (*)(void** frames, int max);

int capture_libunwind(void** frames, int max) { return unw_backtrace(frames, max); }
int capture_glibc(void** frames, int max) { return backtrace(frames, max); }

// Frame by frame with the stack pointer of each frame: what the tracker's stack cache needs
// (the return-address slots of the frames it reuses) and pays only on a cache miss.
int capture_steps(void** frames, int max) {
  unw_context_t context;
  unw_cursor_t cursor;
  unw_getcontext(&context);
  if (unw_init_local(&cursor, &context) < 0) return 0;
  int n = 0;
  while (n < max && unw_step(&cursor) > 0) {
    unw_word_t ip, sp;
    unw_get_reg(&cursor, UNW_REG_IP, &ip);
    unw_get_reg(&cursor, UNW_REG_SP, &sp);
    frames[n++] = reinterpret_cast<void*>(ip);
    benchmark::DoNotOptimize(sp);
  }
  return n;
}

// Recurses until the stack is `depth` frames deep (the runner's own frames below main count),
// then runs the timed loop there. The "frames" counter is the depth actually captured.
__attribute__((noinline)) int run_at_depth(benchmark::State& state, Capture capture, int depth) {
  void* frames[128];
  if (capture(frames, 128) < depth) {
    int n = run_at_depth(state, capture, depth);
    benchmark::DoNotOptimize(n);  // keeps the call from becoming a tail call
    return n;
  }
  int n = 0;
  for (auto _ : state) {
    n = capture(frames, 128);
    benchmark::DoNotOptimize(frames);
  }
  state.counters["frames"] = benchmark::Counter(n, benchmark::Counter::kAvgThreads);
  return n;
}

void UnwBacktrace(benchmark::State& state) {
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  run_at_depth(state, capture_libunwind, static_cast<int>(state.range(0)));
}
void UnwStep(benchmark::State& state) {
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  run_at_depth(state, capture_steps, static_cast<int>(state.range(0)));
}
void GlibcBacktrace(benchmark::State& state) {
  run_at_depth(state, capture_glibc, static_cast<int>(state.range(0)));
}

BENCHMARK(UnwBacktrace)->ArgName("depth")->Arg(10)->Arg(30);
BENCHMARK(UnwBacktrace)->ArgName("depth")->Arg(10)->Arg(30)->Threads(2);
BENCHMARK(UnwStep)->ArgName("depth")->Arg(10)->Arg(30);
BENCHMARK(GlibcBacktrace)->ArgName("depth")->Arg(10)->Arg(30);

}  // namespace

BENCHMARK_MAIN();
