// A preloaded library with nothing in it: what LD_PRELOAD costs a process by itself (opening and
// mapping one more object), the floor under every preloaded allocator's start (docs/internals.md,
// "What each step of the start costs"; tests/bench/per_process.py).
int heapledger_bench_empty_preload;
