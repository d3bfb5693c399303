#!/usr/bin/env bash
# Builds floodgate as a library only, installs it into a scratch prefix, builds the hot-path
# benchmark against it at -O2 (RelWithDebInfo) and -O3 (Release), and runs both. Extra arguments
# go to the benchmark binaries (Google Benchmark flags).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/hot-path"
cmake -S "$root" -B "$out/lib" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOODGATE_BUILD_TESTS=OFF -DFLOODGATE_BUILD_BENCHMARKS=OFF -DFLOODGATE_BUILD_APPS=OFF \
  -DFLOODGATE_BUILD_EXAMPLES=OFF -DFLOODGATE_BUILD_FUZZERS=OFF -DFLOODGATE_BUILD_SERVER=OFF \
  >/dev/null
cmake --build "$out/lib" >/dev/null
cmake --install "$out/lib" --prefix "$out/prefix" >/dev/null
for type in RelWithDebInfo Release; do
  cmake -S "$root/bench/hot_path" -B "$out/$type" -G Ninja -DCMAKE_BUILD_TYPE=$type \
    -DCMAKE_PREFIX_PATH="$out/prefix" >/dev/null
  cmake --build "$out/$type" >/dev/null
done
# Each binary's whole output goes to build/hot-path/TYPE.txt; the tables are printed here.
for type in RelWithDebInfo Release; do
  echo "hot path, $type: running (about half a minute)..."
  "$out/$type/hot_path" --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_color=false "$@" >"$out/$type.txt" 2>&1
  sed -n '/^hot path/,$p' "$out/$type.txt"
done
