#!/usr/bin/env bash
# Measures `floodgate serve` with floodgate-rls-load on this machine: the table of the README
# ("A rate-limit service"). Builds the ci preset, starts its own redis-server and floodgate-serve
# on free loopback ports (stopped on exit, even on failure), and prints, for the in-process and
# the Redis backend with 1 and 3 descriptors per request, requests/s and p50/p99/p99.9 latency
# at 1, 16 and 128 calls in flight; then the in-process backend in open loop at 50%, 65% and
# 80% of the maximum it measured, three runs each (latency counted from when each request was
# due).
#
#   bench/serve/run.sh [--seconds S] [--no-build] [--no-redis] [--pin]
#
# --pin puts the server on CPU 0 and the generator on CPU 1 (taskset), so that neither takes
# the other's core; without it both float over all CPUs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds=2
build=1
with_redis=1
pin=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-redis) with_redis=0; shift ;;
    --pin) pin=1; shift ;;
    *) echo "bench/serve/run.sh: unknown argument \"$1\"" >&2; exit 2 ;;
  esac
done
if [[ $build == 1 ]]; then
  cmake --preset ci >/dev/null
  cmake --build --preset ci --target floodgate_serve_bin floodgate_rls_load >/dev/null
fi
bin="$root/build/ci/apps/floodgate"
serve_cpu=()
load_cpu=()
if [[ $pin == 1 ]]; then
  serve_cpu=(taskset -c 0)
  load_cpu=(taskset -c 1)
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Every request admitted (1,000,000/s per value), so the figures are of deciding, not refusing.
cat >"$work/bench.yaml" <<'YAML'
domain: bench
descriptors:
  - key: k0
    rate_limit: {unit: second, requests_per_unit: 1000000}
  - key: k1
    rate_limit: {unit: second, requests_per_unit: 1000000}
  - key: k2
    rate_limit: {unit: second, requests_per_unit: 1000000}
YAML

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts floodgate-serve with the given extra flags; sets $grpc_port and $serve_pid.
start_serve() {
  grpc_port="$(free_port)"
  "${serve_cpu[@]}" "$bin/floodgate-serve" --config "$work/bench.yaml" \
    --grpc "127.0.0.1:$grpc_port" --http off "$@" >"$work/serve.out" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 100); do
    grep -q "gRPC on" "$work/serve.out" && return 0
    sleep 0.05
  done
  echo "floodgate-serve did not start:" >&2
  cat "$work/serve.out" >&2
  exit 1
}
stop_serve() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
}
load() {
  "${load_cpu[@]}" "$bin/floodgate-rls-load" --grpc "127.0.0.1:$grpc_port" --seconds "$seconds" "$@"
}

# CPU time taken by the VM's host from this machine (steal), from /proc/stat: on a shared host
# the figures move with it, so each run says how much there was.
cpu_times() { awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $9 }' /proc/stat; }
read -r total0 steal0 < <(cpu_times)
report_steal() {
  read -r total1 steal1 < <(cpu_times)
  awk -v t=$((total1 - total0)) -v s=$((steal1 - steal0)) \
    'BEGIN { printf "(CPU time stolen by the host during the run: %.1f%%)\n", (t > 0 ? 100 * s / t : 0) }'
}

echo "== in process"
start_serve
load --descriptors 1 | tee "$work/local1.txt"
load --descriptors 3
# The maximum: the best requests/s of the closed-loop rows with one descriptor.
max="$(awk '$1 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { printf "%d", m }' "$work/local1.txt")"
echo "== in process, open loop (maximum measured above: $max/s)"
# Three runs of each rate, one after the other: a shared host moves single runs a lot.
for pct in 50 65 80; do
  rate=$((max * pct / 100))
  for run in 1 2 3; do
    printf "%d%% of the maximum, run %d: " "$pct" "$run"
    load --descriptors 1 --streams 1 --rate "$rate" | tail -1
  done
done
stop_serve

if [[ $with_redis == 1 ]]; then
  redis_port="$(free_port)"
  "${serve_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no >"$work/redis.out" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  echo "== Redis (local redis-server on loopback)"
  start_serve --redis "redis://127.0.0.1:$redis_port"
  load --descriptors 1
  load --descriptors 3
  stop_serve
fi
report_steal
