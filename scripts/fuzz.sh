#!/usr/bin/env bash
# Runs each libFuzzer target (the `fuzz` preset: clang, ASan, UBSan) over a working copy of its
# committed corpus, then over every input that once found a bug. Usage:
#   scripts/fuzz.sh seconds S   each target for S seconds (make fuzz; FUZZ_SECONDS)
#   scripts/fuzz.sh runs N      each target for N inputs from seed 1 (CI: a fixed amount of work)
# New inputs that reach new code stay in build/fuzz/work/TARGET (copy the useful ones into
# fuzz/corpus/TARGET). A crash, leak or broken invariant stops with the input in
# build/fuzz/artifacts/TARGET: add it to fuzz/regressions/TARGET, where `make test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: fuzz.sh seconds S | runs N}
amount=${2:?usage: fuzz.sh seconds S | runs N}
case $mode in
  seconds) limit=(-max_total_time="$amount") ;;
  runs) limit=(-runs="$amount" -seed=1) ;;
  *) echo "fuzz.sh: unknown mode \"$mode\" (seconds or runs)" >&2; exit 1 ;;
esac
[[ $amount =~ ^[0-9]+$ && $amount -gt 0 ]] || {
  echo "fuzz.sh: \"$amount\" is not a whole number above 0" >&2; exit 1; }

targets=(trace quota key_quotas limiters redis_replies config rls_request)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc 2>/dev/null || echo 2)" \
  --target "${targets[@]/#/floodgate_fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/floodgate_fuzz_$t
  work=build/fuzz/work/$t
  artifacts=build/fuzz/artifacts/$t
  rm -rf "$work" && mkdir -p "$work" "$artifacts"
  cp fuzz/corpus/"$t"/* "$work"/
  echo "== fuzz $t: ${limit[*]}"
  log=build/fuzz/$t.log
  status=0
  "$bin" -rss_limit_mb=2048 -max_len=8192 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$artifacts"/ "${limit[@]}" "$work" >"$log" 2>&1 || status=$?
  grep -E '^(Done|INFO: seed corpus|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|fuzz invariant|.*runtime error|.*ERROR)|DONE' "$log" || true
  if [[ $status -ne 0 ]]; then
    echo "fuzz $t: FOUND a bug (exit $status); the input is in $artifacts" >&2
    exit 1
  fi
  # Every input that once found a bug still runs clean.
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    "$bin" fuzz/regressions/"$t"/* >/dev/null 2>&1 || {
      echo "fuzz $t: a regression input fails again" >&2; exit 1; }
  fi
done
echo "fuzz: every target ran clean"
