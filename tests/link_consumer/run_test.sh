#!/usr/bin/env bash
# Installs heapledger into a scratch prefix, builds the consumer project against it with
# find_package(heapledger), runs it and checks its JSON report names the leak exactly.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
out=$(HEAPLEDGER_OPTIONS="log=none:json=$work/report.json" "$work/consumer/consumer")
[[ "$out" == "link mode works" ]] || { echo "unexpected output: $out"; exit 1; }
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == "heapledger/1", r["schema"]
hits = [l for l in r["leaks"] if l["stack"] and (l["stack"][0]["function"] or "").startswith("consumer_leak")]
assert len(hits) == 1, [l["stack"][0] for l in r["leaks"]]
assert (hits[0]["bytes"], hits[0]["blocks"]) == (40, 1), hits[0]
print("link mode: consumer_leak 40 bytes in 1 block, as expected")
PY
