#!/usr/bin/env bash
# Installs heapledger into a scratch prefix, builds the consumer project against it with
# find_package(heapledger), runs it and checks its JSON report names the leak exactly; then the
# same against the build tree itself.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null

# Builds the consumer into $2 against the package found through CMAKE_PREFIX_PATH=$1, runs it
# and checks that its JSON report has consumer_leak's 40 bytes in 1 block.
check_consumer() {
  local prefix=$1 dir=$2 label=$3
  cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$dir" >/dev/null
  out=$(HEAPLEDGER_OPTIONS="log=none:json=$dir/report.json" "$dir/consumer")
  [[ "$out" == "link mode works" ]] || { echo "unexpected output ($label): $out"; exit 1; }
  python3 - "$dir/report.json" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == "heapledger/1", r["schema"]
hits = [l for l in r["leaks"] if l["stack"] and (l["stack"][0]["function"] or "").startswith("consumer_leak")]
assert [(l["bytes"], l["blocks"]) for l in hits] == [(40, 1)], [l["stack"][0] for l in r["leaks"]]
print(f"link mode, {sys.argv[2]}: consumer_leak 40 bytes in 1 block, as expected")
PY
}

check_consumer "$work/prefix" "$work/consumer" "installed"
# A C program that calls no allocation function itself keeps the library (GCC's --as-needed).
readelf -d "$work/consumer/c_consumer" | grep -q 'NEEDED.*libheapledger' ||
  { echo "c_consumer does not need libheapledger:"; readelf -d "$work/consumer/c_consumer"; exit 1; }
out=$(HEAPLEDGER_OPTIONS="log=none:json=$work/c_report.json" "$work/consumer/c_consumer")
[[ "$out" == "c link mode works" ]] || { echo "unexpected output: $out"; exit 1; }
python3 - "$work/c_report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
hits = [l for l in r["leaks"] if any(f["function"] == "c_consumer_leak" for f in l["stack"])]
assert [(l["kind"], l["bytes"], l["blocks"]) for l in hits] == [("definite", 6, 1)], hits
print("link mode, C: c_consumer_leak 6 bytes in 1 block, as expected")
PY
# The installed target names its include directory once (it was listed twice).
targets="$work/prefix/lib/cmake/heapledger/heapledgerTargets.cmake"
[[ -f "$targets" ]] || targets=$(find "$work/prefix" -name heapledgerTargets.cmake | head -1)
includes=$(grep 'INTERFACE_INCLUDE_DIRECTORIES' "$targets")
[[ "$includes" == *'"${_IMPORT_PREFIX}/include"'* ]] || { echo "include directories: $includes"; exit 1; }
# The build tree as the package (its config file included a targets file only the install wrote).
check_consumer "$build" "$work/consumer-build-tree" "build tree"
