#!/usr/bin/env bash
# Builds heapledger and runs every test with ctest: unit tests, end-to-end programs under the
# preload, real unmodified programs, and the link-mode consumer. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${HEAPLEDGER_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
