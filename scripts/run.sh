#!/usr/bin/env bash
# Builds heapledger if needed, then runs a program under it and shows the report.
#   scripts/run.sh                  the bundled demo program
#   scripts/run.sh -- PROG ARGS     your program (any heapledger run flags may come before --)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HEAPLEDGER_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" >/dev/null
cli="$build/bin/heapledger"
if [[ $# -eq 0 ]]; then
  if [[ ! -x "$build/bin/demo" ]]; then  # a build with -DHEAPLEDGER_BUILD_TESTS=OFF
    echo "heapledger: $build has no demo (it is built with the tests, which this build leaves" \
      "out: -DHEAPLEDGER_BUILD_TESTS=OFF); run your program: scripts/run.sh -- PROG ARGS" >&2
    exit 2
  fi
  echo "heapledger: running the bundled demo ($build/bin/demo) under heapledger" >&2
  exec "$cli" run -- "$build/bin/demo"
fi
flags=()
while [[ $# -gt 0 && "$1" != "--" ]]; do flags+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
if [[ $# -eq 0 ]]; then
  echo "usage: scripts/run.sh [heapledger run flags] [-- PROG ARGS...]" >&2
  exit 2
fi
exec "$cli" run "${flags[@]}" -- "$@"
