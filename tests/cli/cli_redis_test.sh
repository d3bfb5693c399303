#!/bin/bash
# End-to-end tests of the floodgate command against a redis-server of the test's own (a Unix
# socket in a fresh folder, no persistence), removed whatever happens: replay --redis decides as
# the in-process replay does, byte for byte; --time server decides at Redis's instants; bad
# flags, a Redis that is not there and one that dies mid-replay get clear errors; bench --redis
# prints its table. Usage: cli_redis_test.sh FLOODGATE REDIS_SERVER WORK_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
bin=$1
server=$2
work=$3
rm -rf "$work" && mkdir -p "$work"
cd "$work" || exit 1

pid=
ports=()
start_redis() {
  rm -f "$work/redis.sock"
  "$server" --port 0 --unixsocket "$work/redis.sock" --save '' --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
  pid=$!
  for _ in $(seq 500); do
    [ -S "$work/redis.sock" ] && return
    sleep 0.01
  done
  fail "redis-server did not start: $(cat "$work/redis.log")"
}
cluster_pids=()
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; for p in "${cluster_pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT
start_redis
url="unix://$work/redis.sock"

# A trace with 40 keys (one tier of them premium), costs 0 to 6, instants mostly advancing and
# sometimes going back (stale), generated with a fixed seed.
awk 'BEGIN {
  srand(42); t = 1764662400000000000; print "time_ns,key,cost"
  for (i = 0; i < 4000; i++) {
    r = rand()
    if (r < 0.6) t += int(rand() * 300000000)
    when = t
    if (r > 0.95) when = t - int(rand() * 900000000)
    k = int(rand() * 40)
    key = (k < 8 ? "premium:" k : "k" k)
    printf "%d,%s,%d\n", when, key, int(rand() * 7)
  }
}' >trace.csv
printf 'premium:* 5/s burst 4\n' >tiers.txt

for algorithm in gcra token-bucket; do
  run "local-$algorithm" 0 "$bin" replay trace.csv --quota "2/s burst 3" --quotas tiers.txt \
    --algorithm "$algorithm" --out "local-$algorithm.csv"
  run "redis-$algorithm" 0 "$bin" replay trace.csv --quota "2/s burst 3" --quotas tiers.txt \
    --algorithm "$algorithm" --redis "$url" --out "redis-$algorithm.csv"
  cmp "local-$algorithm.csv" "redis-$algorithm.csv" ||
    fail "$algorithm: replay --redis differs from the in-process replay: $(diff "local-$algorithm.csv" "redis-$algorithm.csv" | head -5)"
  [ "$(wc -l <"redis-$algorithm.csv")" = 4001 ] || fail "$algorithm: expected 4000 decisions"
  grep -q ',true,' "redis-$algorithm.csv" || fail "$algorithm: nothing admitted"
  grep -q ',false,' "redis-$algorithm.csv" || fail "$algorithm: nothing denied"
  contains "redis-$algorithm" "redis-$algorithm.err" "round trips"
done
pass "replay --redis (gcra, token-bucket, per-key tiers, stale instants): byte-identical to the in-process replay"

# The same through a 3-master Redis Cluster of the test's own (ports below the ephemeral range,
# each with its cluster bus port 10000 above; a port taken by someone else is tried again).
cli="$(dirname "$server")/redis-cli"
for n in 1 2 3; do
  for attempt in $(seq 20); do
    port=$((20000 + RANDOM % 10000))
    mkdir -p "cluster$n"
    "$server" --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 1000 --save '' --appendonly no --dir "$work/cluster$n" \
      --logfile "$work/cluster$n/redis.log" &
    node=$!
    sleep 0.2
    if kill -0 "$node" 2>/dev/null && "$cli" -p "$port" ping >/dev/null 2>&1; then
      cluster_pids+=("$node")
      ports+=("127.0.0.1:$port")
      break
    fi
  done
done
[ "${#cluster_pids[@]}" = 3 ] || fail "could not start 3 cluster nodes"
cluster_url="redis+cluster://$(IFS=,; echo "${ports[*]}")"
run create 0 "$cli" --cluster create "${ports[@]}" --cluster-yes
for _ in $(seq 200); do
  "$cli" -p "${ports[0]##*:}" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.05
done
run cluster 0 "$bin" replay trace.csv --quota "2/s burst 3" --quotas tiers.txt --redis "$cluster_url" --out cluster.csv
cmp cluster.csv local-gcra.csv || fail "replay --redis on a cluster differs from the in-process replay"
for p in "${ports[@]}"; do
  [ "$("$cli" -p "${p##*:}" dbsize)" -gt 0 ] || fail "cluster: node $p holds no keys: the keys were not spread"
done
pass "replay --redis redis+cluster://: byte-identical on a 3-master cluster, keys on every master"

run again 0 "$bin" replay trace.csv --quota "2/s burst 3" --quotas tiers.txt --redis "$url" --out again.csv
cmp again.csv local-gcra.csv || fail "a second replay --redis differs: runs must not share keys"
run shared1 0 "$bin" replay trace.csv --quota "2/s burst 3" --redis "$url" --redis-prefix "shared:" --out shared1.csv
run shared2 0 "$bin" replay trace.csv --quota "2/s burst 3" --redis "$url" --redis-prefix "shared:" --out shared2.csv
cmp -s shared1.csv shared2.csv && fail "two runs with one --redis-prefix should share state and differ"
pass "replay --redis: each run has keys of its own; --redis-prefix shares them"

before=$(date +%s%N)
run server 0 "$bin" replay trace.csv --quota "2/s burst 3" --redis "$url" --time server --out server.csv
after=$(date +%s%N)
[ "$(wc -l <server.csv)" = 4001 ] || fail "--time server: expected 4000 decisions"
awk -F, -v lo="$before" -v hi="$after" 'NR > 1 && ($1 < lo - 1000000 || $1 > hi + 1000000) { bad = $0 }
  END { if (bad) { print "instant outside the run: " bad; exit 1 } }' server.csv ||
  fail "--time server: time_ns is not Redis's instant of each decision"
awk -F, 'NR > 2 && $1 < last { bad = 1 } { last = $1 } END { exit bad }' server.csv ||
  fail "--time server: Redis's instants went back"
pass "replay --redis --time server: time_ns holds Redis's instant of each decision"

run fixed 1 "$bin" replay trace.csv --algorithm fixed-window --quota "2/s" --redis "$url"
contains fixed fixed.err 'the algorithm "fixed-window" is decided in process only'
run badurl 1 "$bin" replay trace.csv --redis "http://localhost"
contains badurl badurl.err 'redis URL "http://localhost"'
run nobody 1 "$bin" replay trace.csv --redis "unix://$work/nobody.sock"
contains nobody nobody.err "flag --redis: \"unix://$work/nobody.sock\""
[ ! -s nobody.out ] || fail "nobody: decisions written although Redis never answered"
run secret 1 "$bin" replay trace.csv --redis "redis://limiter:hunter2@127.0.0.1:1"
contains secret secret.err 'flag --redis: "redis://limiter:***@127.0.0.1:1"'
! grep -q hunter2 secret.err || fail "secret: the password is in the message: $(cat secret.err)"
run timealone 1 "$bin" replay trace.csv --time server
contains timealone timealone.err "flag --time: needs --redis URL"
run badtime 1 "$bin" replay trace.csv --redis "$url" --time local
contains badtime badtime.err 'flag --time: "local" must be trace or server'
pass "replay --redis: an algorithm Redis cannot decide, bad URLs, no server, bad --time: status 1 and a message (the whole URL, its password hidden)"

# Redis dies mid-replay: the replay stops with a message, everything decided before it written.
awk 'BEGIN { print "time_ns,key,cost"; for (i = 0; i < 1000000; i++) printf "%d,k%d,1\n", i * 1000, i % 1000 }' >long.csv
"$bin" replay long.csv --quota "1000/s" --redis "$url" --out long.out 2>long.err &
replay=$!
sleep 1
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
wait "$replay"
status=$?
[ "$status" = 1 ] || fail "a Redis that died mid-replay: exit status $status, expected 1; $(cat long.err)"
contains died long.err "stopped; the "
written=$(($(wc -l <long.out) - 1))
contains died long.err "stopped; the $(echo "$written" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') decisions before it are written"
[ "$written" -gt 0 ] || fail "died: nothing was decided before Redis died"
pass "replay --redis: Redis killed mid-replay: status 1, $written decisions written and reported"

start_redis
run bench 0 "$bin" bench --redis "$url" --seconds 0.05 --rounds 1 --callers 1,4
contains bench bench.out "vs naive"
contains bench bench.out "ceiling: "
contains bench bench.out "redis-benchmark -s $work/redis.sock -c 50 -P 16"
[ "$(grep -cE '^(1|4) +[0-9]+' bench.out)" = 2 ] || fail "bench --redis: expected rows for 1 and 4 callers: $(cat bench.out)"
run benchcluster 1 "$bin" bench --redis "redis+cluster://127.0.0.1:7000"
contains benchcluster benchcluster.err "needs one standalone server"
run benchcallers 1 "$bin" bench --redis "$url" --callers 1,0
contains benchcallers benchcallers.err 'flag --callers: "1,0" is not a list of counts from 1 to 1024 (bad item "0")'
run benchalone 1 "$bin" bench --callers 4
contains benchalone benchalone.err "flag --callers: needs --redis"
pass "bench --redis: the table, its ceiling line, and errors for a cluster and bad --callers"

echo "all $checks checks passed"
