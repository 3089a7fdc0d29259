#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent: packages already
# present are skipped, so scripts/test.sh and scripts/run.sh can call it on every run.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libunwind-dev libspdlog-dev libfmt-dev libdw-dev libelf-dev zlib1g-dev libiberty-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  # real programs the end-to-end suite runs under the library
  python3 sqlite3 git perl g++ file openssl
  # a tool that replaces malloc itself: heapledger must stand aside under it
  valgrind
  # a debugger the program runs under: the leak scan's signal must not stop it
  gdb
  # and the compiler whose debug information the inlined-frames test checks besides GCC's
  clang
  # a library whose .eh_frame lies in another segment than .eh_frame_hdr (LLVM's linker put it
  # in the writable one): the fast unwinder's rule reader is compared with libdw's on it
  libunwind-14
  # the C library's debug information (valgrind's package depends on it), which the report
  # must not spend time reading: a test checks its frames are named from the symbol table
  libc6-dbg
)
if [[ "${HEAPLEDGER_BENCH:-0}" == 1 ]]; then
  # peers the benchmark measures against; only scripts/bench.sh asks for them
  packages+=(libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev heaptrack hyperfine time)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
