#!/usr/bin/env bash
# Usage: run_with_redis.sh REDIS_SERVER PROGRAM [ARGS...]
# Starts a redis-server of its own on a Unix socket in a fresh folder (no TCP port, no
# persistence), runs PROGRAM with the server's URL as its first argument, and removes the server
# and the folder whatever happens.
set -euo pipefail
server=$1
shift
dir=$(mktemp -d /tmp/floodgate-example-XXXXXX)
"$server" --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 500); do
  [[ -S $dir/redis.sock ]] && break
  sleep 0.01
done
"$@" "unix://$dir/redis.sock"
