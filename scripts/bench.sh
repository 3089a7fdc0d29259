#!/usr/bin/env bash
# The performance benchmark of issue 4: installs the peer allocators and heaptrack, builds, then
# runs every workload under glibc, heapledger (track=0 and full), mimalloc, jemalloc, tcmalloc and
# heaptrack, the tracker-memory/exit-report measurement and the microbenchmarks. Prints one table
# and writes tests/bench/RESULTS.md.
#   scripts/bench.sh                 5 repetitions (heaptrack 3), ~15 minutes on 2 cores
#   scripts/bench.sh --quick         1 repetition, smaller inputs: a smoke run
#   scripts/bench.sh --reps N        N repetitions
# Other flags go to tests/bench/bench.py (--help lists them). HEAPLEDGER_BUILD_DIR picks the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command_line="${HEAPLEDGER_BUILD_DIR:+HEAPLEDGER_BUILD_DIR=$HEAPLEDGER_BUILD_DIR }scripts/bench.sh${*:+ $*}"
HEAPLEDGER_BENCH=1 scripts/setup.sh
build=${HEAPLEDGER_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEAPLEDGER_BUILD_TESTS=ON \
  -DHEAPLEDGER_BUILD_BENCH=ON >/dev/null
cmake --build "$build"
# Debian's interpreter, not a version manager's shim: the same python3 the workload runs.
python=/usr/bin/python3
[[ -x "$python" ]] || python=$(command -v python3)
exec "$python" tests/bench/bench.py --build "$build" --command "$command_line" "$@"
