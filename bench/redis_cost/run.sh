#!/usr/bin/env bash
# Redis CPU per rate-limit decision: floodgate's ways of deciding on Redis beside
# envoyproxy/ratelimit's INCRBY + EXPIRE and rate-limiter-flexible's fixed-window script, on a
# redis-server of its own (a free loopback port, no persistence; stopped on exit, even on
# failure). Builds the ci preset's floodgate_redis_cost first. Arguments go to it
# (--decisions N, --keys N, --rounds N).
#
#   bench/redis_cost/run.sh [--no-build] [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ "${1:-}" == "--no-build" ]]; then
  shift
else
  cmake --preset ci >/dev/null
  cmake --build --preset ci --target floodgate_redis_cost >/dev/null
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  >"$work/redis.out" 2>&1 &
redis_pid=$!
cleanup() {
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), port $port"
"$root/build/ci/bench/floodgate_redis_cost" --url "redis://127.0.0.1:$port" "$@"
