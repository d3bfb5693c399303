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
#   bench/serve/run.sh --peer BINARY [--rounds N] [--seconds S] [--no-build] [--pin]
#
# --pin puts the servers and Redis on CPU 0 and the generator on CPU 1 (taskset), so that
# neither takes the other's core; without it all float over all CPUs.
#
# --peer BINARY compares instead: another RLS server (envoyproxy/ratelimit's binary, or its .gz,
# configured by its environment settings) runs beside floodgate on the same redis-server with
# the same YAML, and for 1 and 3 descriptors at 1, 16 and 128 requests in flight the contenders
# (floodgate in process, floodgate on Redis with default flags, the peer on Redis) are
# alternated per cell, --rounds times (3); each prints the median round: requests/s, p99, the
# server's CPU per request, Redis's CPU per request, and the descriptors floodgate's Redis
# failure policy decided (0 means Redis decided every one).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds=2
build=1
with_redis=1
pin=0
peer=""
rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --peer) peer="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
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

# Starts a redis-server of the run's own; sets $redis_port.
start_redis() {
  redis_port="$(free_port)"
  "${serve_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no >"$work/redis.out" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start:" >&2
  cat "$work/redis.out" >&2
  exit 1
}

# CPU seconds a process has used (user + system).
process_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.6f", ($14 + $15) / hz }' "/proc/$1/stat"
}
# CPU seconds Redis has used (every thread), from INFO cpu.
redis_cpu() {
  redis-cli -p "$redis_port" info cpu |
    awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'
}
# Descriptors floodgate's failure policy decided so far, from its /metrics.
policy_decided() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^floodgate_policy_decisions_total/ { s += $2 } END { printf "%d", s }'
}

# One cell for one contender: prints "requests/s p99_us server_us_per_request
# redis_us_per_request policy_decisions".
measure_cell() {
  local port="$1" pid="$2" descriptors="$3" streams="$4" http="$5"
  local c0 r0 p0 out c1 r1 p1
  c0="$(process_cpu "$pid")"
  r0="$(redis_cpu)"
  p0=0
  [[ -n "$http" ]] && p0="$(policy_decided "$http")"
  out="$("${load_cpu[@]}" "$bin/floodgate-rls-load" --grpc "127.0.0.1:$port" --seconds "$seconds" \
    --descriptors "$descriptors" --streams "$streams" | awk '$1 ~ /^[0-9]+$/ { print $2, $4 }')"
  c1="$(process_cpu "$pid")"
  r1="$(redis_cpu)"
  p1=0
  [[ -n "$http" ]] && p1="$(policy_decided "$http")"
  awk -v o="$out" -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
    -v r="$(awk -v a="$r0" -v b="$r1" 'BEGIN { print b - a }')" -v s="$seconds" \
    -v p=$((p1 - p0)) 'BEGIN {
      split(o, f, " "); n = f[1] * s; if (n < 1) n = 1
      printf "%d %d %.1f %.1f %d\n", f[1], f[2], c * 1e6 / n, r * 1e6 / n, p }'
}

# The comparison of --peer (see the top of this file).
compare_with_peer() {
  local peer_bin="$peer"
  if [[ "$peer" == *.gz ]]; then
    peer_bin="$work/peer"
    gzip -dc "$peer" >"$peer_bin"
    chmod +x "$peer_bin"
  fi
  start_redis
  # floodgate on Redis, default flags but the addresses; HTTP on for its /metrics.
  local fg_grpc fg_http fl_grpc peer_grpc
  fg_grpc="$(free_port)"
  fg_http="$(free_port)"
  "${serve_cpu[@]}" "$bin/floodgate-serve" --config "$work/bench.yaml" \
    --grpc "127.0.0.1:$fg_grpc" --http "127.0.0.1:$fg_http" \
    --redis "redis://127.0.0.1:$redis_port" >"$work/floodgate.out" 2>&1 &
  local fg_pid=$!
  pids+=("$fg_pid")
  # floodgate in process.
  fl_grpc="$(free_port)"
  "${serve_cpu[@]}" "$bin/floodgate-serve" --config "$work/bench.yaml" \
    --grpc "127.0.0.1:$fl_grpc" --http off >"$work/local.out" 2>&1 &
  local fl_pid=$!
  pids+=("$fl_pid")
  # The peer, configured as envoyproxy/ratelimit is: by its environment.
  mkdir -p "$work/rl/config"
  cp "$work/bench.yaml" "$work/rl/config/bench.yaml"
  peer_grpc="$(free_port)"
  env USE_STATSD=false LOG_LEVEL=warn RUNTIME_ROOT="$work" RUNTIME_SUBDIRECTORY=rl \
    RUNTIME_WATCH_ROOT=false REDIS_SOCKET_TYPE=tcp REDIS_URL="127.0.0.1:$redis_port" \
    HOST=127.0.0.1 PORT="$(free_port)" GRPC_HOST=127.0.0.1 GRPC_PORT="$peer_grpc" \
    DEBUG_HOST=127.0.0.1 DEBUG_PORT="$(free_port)" \
    "${serve_cpu[@]}" "$peer_bin" >"$work/peer.out" 2>&1 &
  local peer_pid=$!
  pids+=("$peer_pid")
  for port in "$fg_grpc" "$fl_grpc" "$peer_grpc"; do
    for _ in $(seq 200); do
      python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" \
        2>/dev/null && break
      sleep 0.05
    done
  done
  echo "== floodgate serve (in process; on Redis with default flags) and $(basename "$peer") on" \
    "one redis-server; $seconds s per cell, median of $rounds rounds, contenders alternated"
  printf "%-11s %-9s %-22s %11s %9s %13s %13s %9s\n" descriptors "in flight" contender \
    requests/s "p99 us" "server us/req" "Redis us/req" policy
  local names=("floodgate, in process" "floodgate, Redis" "$(basename "$peer" .gz), Redis")
  local ports=("$fl_grpc" "$fg_grpc" "$peer_grpc")
  local procs=("$fl_pid" "$fg_pid" "$peer_pid")
  local https=("" "$fg_http" "")
  for descriptors in 1 3; do
    for streams in 1 16 128; do
      : >"$work/cell"
      for ((round = 0; round < rounds; round++)); do
        for k in 0 1 2; do
          # Each round starts with another contender: none always runs first.
          local i=$(((k + round) % 3))
          echo "$i $(measure_cell "${ports[$i]}" "${procs[$i]}" "$descriptors" "$streams" \
            "${https[$i]}")" >>"$work/cell"
        done
      done
      for i in 0 1 2; do
        # The median round by requests/s.
        awk -v i="$i" '$1 == i' "$work/cell" | sort -k2,2n |
          awk -v d="$descriptors" -v s="$streams" -v name="${names[$i]}" -v r="$rounds" \
            'NR == int(r / 2) + 1 { printf "%-11s %-9s %-22s %11d %9d %13.1f %13.1f %9s\n",
              d, s, name, $2, $3, $4, $5, (name ~ /^floodgate, Redis/ ? $6 : "-") }'
      done
    done
  done
  echo "(policy: descriptors floodgate's Redis failure policy decided in the median round; the"
  echo " sum over every round: see floodgate_policy_decisions_total at the end of the run:" \
    "$(policy_decided "$fg_http"))"
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

if [[ -n "$peer" ]]; then
  compare_with_peer
  report_steal
  exit 0
fi

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
