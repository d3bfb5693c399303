// Redis Cluster, for real: a 3-master, 3-replica cluster of the test's own on loopback. Keys are
// routed by slot to every master and decided as in process; a slot that migrates is followed
// through ASK and MOVED; a live `redis-cli --cluster reshard` under concurrent callers admits
// nothing beyond the quota; a master killed with SIGKILL is answered by the failure policy until
// its replica takes over, then by Redis again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/redis/internal/cluster_slots.h"
#include "floodgate/redis/internal/scripts.h"
#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using internal::key_slot;
using testing::make_limiter;
using testing::Program;
using testing::RedisCluster;

constexpr auto kNeverHangs = 1s;  // Far above the 5 ms command timeout.

// The cluster the tests that leave every node running share.
RedisCluster& cluster() {
  static RedisCluster* c = new RedisCluster(3, 1);  // Killed by the kernel when the binary exits.
  return *c;
}

// Returns the index of another master than `master`.
std::size_t other_master(RedisCluster& c, std::size_t master) {
  for (std::uint16_t slot = 0; slot < internal::kClusterSlots; slot += 64) {
    const std::size_t m = c.master_of(slot);
    if (m != master && m < c.size()) return m;
  }
  return c.size();
}

std::string text(const internal::Reply& reply) {
  return reply.text.empty() ? internal::describe(reply) : reply.text;
}

TEST(RedisClusterTest, RoutesEveryKeyToItsMasterAndDecidesAsInProcess) {
  const Quota quota = *Quota::parse("7/13min burst 3");
  auto redis = make_limiter({.url = cluster().url(),
                             .prefix = "route:",
                             .default_quota = quota,
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 2s,
                             .ttl_slack = 1h,  // Trace time, not Redis's: no key expires early.
                             .deny_cache_keys = 0});
  ASSERT_TRUE(redis);
  KeyedLimiter<std::string, GcraRule, SteadyClock, Threads::One> local{
      {.default_quota = quota, .max_keys = 1000}};
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back("k" + std::to_string(i));
  keys.push_back("{tenant-7}:a");
  keys.push_back("{tenant-7}:b");
  std::mt19937_64 rng(7);
  std::int64_t t = 1'764'662'400'000'000'000;
  int admitted = 0;
  int denied = 0;
  for (int i = 0; i < 2000; ++i) {
    t +=
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(quota.interval().count() / 8));
    const std::string& key = keys[rng() % keys.size()];
    const std::uint64_t cost = 1 + rng() % 4;
    const RedisDecision got = redis->try_acquire_at(key, Instant{Nanos{t}}, cost);
    const Decision want = local.try_acquire_at(key, Instant{Nanos{t}}, cost);
    ASSERT_EQ(got.source, DecisionSource::Redis) << redis->last_error();
    ASSERT_EQ(got.decision, want) << "step " << i << " key " << key;
    (want.allowed() ? admitted : denied) += 1;
  }
  EXPECT_GT(admitted, 100);
  EXPECT_GT(denied, 100);

  // Each key lives on the master of its slot (ours agrees with the servers': no redirection was
  // needed), keys on every master, a hash tag's keys on one slot.
  EXPECT_EQ(redis->stats().redirects, 0u);
  EXPECT_GE(redis->stats().topology_refreshes, 1u);
  std::map<std::size_t, int> per_master;
  for (const std::string& key : keys) {
    const std::string stored = "route:" + key;
    const std::size_t m = cluster().master_of(key_slot(stored));
    ASSERT_LT(m, cluster().size());
    EXPECT_EQ(cluster().node(m).command({"EXISTS", stored}).integer, 1) << stored;
    ++per_master[m];
  }
  EXPECT_EQ(per_master.size(), 3u);
  EXPECT_EQ(key_slot("route:{tenant-7}:a"), key_slot("route:{tenant-7}:b"));
  // Each master was sent the script once as EVAL: scripts are loaded per node.
  EXPECT_GE(redis->stats().noscript_retries, 3u);
}

// Envoy's window in envoyproxy/ratelimit's keys: plain commands, routed to each key's master.
TEST(RedisClusterTest, EnvoyKeysAreCountedOnTheirSlotsMaster) {
  auto redis = make_limiter({.url = cluster().url(),
                             .prefix = "env:",
                             .algorithm = Algorithm::EnvoyFixedWindow,
                             .default_quota = Quota::per_minute(2),
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 2s,
                             .deny_cache_keys = 0,
                             .envoy_keys = true});
  ASSERT_TRUE(redis);
  const Instant t{std::chrono::seconds(1'764'633'610)};
  std::map<std::size_t, int> per_master;
  for (int k = 0; k < 30; ++k) {
    const std::string key = "d_user_" + std::to_string(k) + "_";
    for (int i = 0; i < 3; ++i) {
      const RedisDecision d = redis->try_acquire_at(key, t);
      ASSERT_EQ(d.source, DecisionSource::Redis) << redis->last_error();
      EXPECT_EQ(d.allowed(), i < 2) << key << " hit " << i;
    }
    const std::string stored = "env:" + key + "1764633600";
    const std::size_t m = cluster().master_of(key_slot(stored));
    ASSERT_LT(m, cluster().size());
    EXPECT_EQ(cluster().node(m).command({"GET", stored}).text, "3") << stored;
    ++per_master[m];
  }
  EXPECT_EQ(per_master.size(), 3u) << "keys on every master";
  EXPECT_EQ(redis->stats().redirects, 0u);
}

// A batch of calls on keys of every master: one write to each master, whatever the number of
// calls, each decided on its key's master.
TEST(RedisClusterTest, DecideAllWritesOnceToEachMasterOfTheBatch) {
  RedisCluster& c = cluster();
  auto redis = make_limiter({.url = c.url(),
                             .prefix = "batch:",
                             .default_quota = *Quota::parse("1/h"),
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 2s});
  ASSERT_TRUE(redis);
  ASSERT_TRUE(redis->connect(10s)) << redis->last_error();
  // Two keys on each master.
  std::vector<std::string> keys;
  std::map<std::size_t, int> per_master;
  for (int i = 0; i < 1'000; ++i) {
    std::string key = "k" + std::to_string(i);
    const std::size_t master = c.master_of(key_slot("batch:" + key));
    if (master < c.size() && per_master[master] < 2) {
      ++per_master[master];
      keys.push_back(std::move(key));
    }
  }
  ASSERT_EQ(per_master.size(), 3u) << "the cluster's 3 masters";
  ASSERT_EQ(keys.size(), 6u);
  std::vector<RedisCall> calls;
  for (const std::string& key : keys) calls.push_back({.limiter = redis.get(), .key = key});
  for (const std::string& key : keys) calls.push_back({.limiter = redis.get(), .key = key});
  const RedisLimiterStats before = redis->stats();
  RedisLimiter::decide_all(calls);
  const RedisLimiterStats after = redis->stats();
  EXPECT_EQ(after.round_trips - before.round_trips, 3u) << "one per master";
  EXPECT_EQ(after.redirects, before.redirects);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].decision.source, DecisionSource::Redis) << i << ": " << redis->last_error();
    EXPECT_EQ(calls[i].decision.allowed(), i < keys.size()) << i << ": 1 an hour per key";
  }
  for (const std::string& key : keys) {
    const std::size_t master = c.master_of(key_slot("batch:" + key));
    EXPECT_EQ(c.node(master).command({"EXISTS", "batch:" + key}).integer, 1) << key;
  }
}

// All or none on a cluster: keys with one hash tag share a slot and are decided in one script on
// its master; keys in two slots are refused before anything is sent, naming both slots.
TEST(RedisClusterTest, AcquireAllTakesKeysOfOneSlotOnItsMaster) {
  RedisCluster& c = cluster();
  auto global = make_limiter({.url = c.url(),
                              .prefix = "all:global:",
                              .default_quota = Quota::per_hour(3),
                              .on_failure = OnRedisFailure::FailClosed,
                              .command_timeout = 2s});
  ASSERT_TRUE(global);
  auto per_client = RedisLimiter::create({.url = c.url(),
                                          .prefix = "all:client:",
                                          .default_quota = Quota::per_hour(1),
                                          .on_failure = OnRedisFailure::FailClosed,
                                          .connect_timeout = 2s,  // As make_limiter set.
                                          .command_timeout = 2s},
                                         *global);
  ASSERT_TRUE(per_client) << per_client.error().message();
  // The calls hold a view of `key`: it must outlive them.
  const auto request = [&](std::string_view key) {
    return std::vector<RedisCall>{{.limiter = global.get(), .key = "{fleet}"},
                                  {.limiter = per_client->get(), .key = key}};
  };
  const Instant now{Nanos{1'764'662'400'000'000'000}};
  std::vector<bool> admitted;
  for (const char* client : {"a", "a", "b", "c", "d"}) {
    const std::string key = std::string("{fleet}:") + client;
    std::vector<RedisCall> calls = request(key);
    const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(calls, now);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(calls[0].decision.source, DecisionSource::Redis) << global->last_error();
    admitted.push_back(r->allowed());
  }
  // a, then a again (its own limit refuses, the global one keeps its permit), b, c, then d
  // (the global limit of 3 refuses).
  EXPECT_EQ(admitted, (std::vector<bool>{true, false, true, true, false}));
  const std::size_t master = c.master_of(key_slot("fleet"));
  ASSERT_LT(master, c.size());
  for (const char* stored :
       {"all:global:{fleet}", "all:client:{fleet}:a", "all:client:{fleet}:c"}) {
    EXPECT_EQ(c.node(master).command({"EXISTS", stored}).integer, 1) << stored;
  }
  EXPECT_EQ(c.node(master).command({"EXISTS", "all:client:{fleet}:d"}).integer, 0);

  // Without a shared hash tag the keys are in two slots (those of the whole stored keys).
  std::vector<RedisCall> apart = {{.limiter = global.get(), .key = "global"},
                                  {.limiter = per_client->get(), .key = "a"}};
  const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(apart, now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "acquire_all: call 1 (key \"a\"): on a Redis Cluster every key must be in one slot, "
            "but \"all:client:a\" is in slot " +
                std::to_string(key_slot("all:client:a")) + " and \"all:global:global\" in slot " +
                std::to_string(key_slot("all:global:global")) +
                "; give every key one hash tag, such as \"{fleet}\"");
}

TEST(RedisClusterTest, ConnectLoadsTheScriptOnEveryMaster) {
  std::vector<std::size_t> masters;
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    if (cluster().node(i).command({"ROLE"}).elements.at(0).text == "master") masters.push_back(i);
  }
  ASSERT_EQ(masters.size(), 3u);
  const std::string& sha = internal::token_bucket_script().sha1;
  for (std::size_t m : masters) cluster().node(m).command({"SCRIPT", "FLUSH"});
  auto redis = make_limiter({.url = cluster().url(),
                             .prefix = "connect:",
                             .algorithm = Algorithm::TokenBucket,
                             .command_timeout = 2s});
  ASSERT_TRUE(redis);
  const Result<void> connected = redis->connect(20s);
  ASSERT_TRUE(connected) << connected.error().message();
  for (std::size_t m : masters) {
    const internal::Reply exists = cluster().node(m).command({"SCRIPT", "EXISTS", sha});
    ASSERT_EQ(exists.elements.size(), 1u) << text(exists);
    EXPECT_EQ(exists.elements[0].integer, 1) << "master " << m;
  }
  EXPECT_GE(redis->stats().topology_refreshes, 1u);
  EXPECT_GE(redis->stats().connects, 3u * 2u);  // Every master's two connections.
  EXPECT_EQ(redis->stats().decisions, 0u);
}

TEST(RedisClusterTest, FollowsAskWhileASlotMigratesAndMovedOnceItHas) {
  RedisCluster& c = cluster();
  auto redis = make_limiter({.url = c.url(),
                             .prefix = "mig:",
                             .default_quota = *Quota::parse("3/h"),
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 2s,
                             .deny_cache_keys = 0});
  ASSERT_TRUE(redis);
  const std::uint16_t slot = key_slot("mig:{m}x");
  ASSERT_EQ(slot, key_slot("mig:{m}y"));
  const std::size_t source = c.master_of(slot);
  ASSERT_LT(source, c.size());
  const std::size_t target = other_master(c, source);
  ASSERT_LT(target, c.size());
  const std::string s = std::to_string(slot);

  ASSERT_TRUE(redis->try_acquire("{m}x").allowed()) << redis->last_error();
  ASSERT_TRUE(redis->try_acquire("{m}x").allowed());
  ASSERT_EQ(redis->stats().redirects, 0u);

  // The slot starts to migrate: keys still on the source are decided there; a key that is not
  // is asked of the target (ASK, then ASKING).
  ASSERT_EQ(text(c.node(target).command({"CLUSTER", "SETSLOT", s, "IMPORTING", c.id(source)})),
            "OK");
  ASSERT_EQ(text(c.node(source).command({"CLUSTER", "SETSLOT", s, "MIGRATING", c.id(target)})),
            "OK");
  EXPECT_TRUE(redis->try_acquire("{m}x").allowed()) << redis->last_error();
  EXPECT_EQ(redis->stats().redirects, 0u);
  const RedisDecision y = redis->try_acquire("{m}y");
  EXPECT_EQ(y.source, DecisionSource::Redis) << redis->last_error();
  EXPECT_TRUE(y.allowed());
  EXPECT_EQ(redis->stats().redirects, 1u);
  EXPECT_EQ(c.node(target).command({"CLUSTER", "COUNTKEYSINSLOT", s}).integer, 1);

  // The used-up key moves with its state: still denied, now on the target.
  const std::string port = std::to_string(c.node(target).port());
  ASSERT_EQ(text(c.node(source).command(
                {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", "mig:{m}x"})),
            "OK");
  const RedisDecision x = redis->try_acquire("{m}x");
  EXPECT_EQ(x.source, DecisionSource::Redis) << redis->last_error();
  EXPECT_FALSE(x.allowed()) << "the state moved with the key: 3 of 3 were used";
  EXPECT_EQ(redis->stats().redirects, 2u);

  // The slot is the target's: MOVED once, then the map knows.
  for (std::size_t i = 0; i < c.size(); ++i) {
    c.node(i).command({"CLUSTER", "SETSLOT", s, "NODE", c.id(target)});
  }
  EXPECT_FALSE(redis->try_acquire("{m}x").allowed());
  EXPECT_EQ(redis->stats().redirects, 3u);
  EXPECT_FALSE(redis->try_acquire("{m}x").allowed());
  EXPECT_TRUE(redis->try_acquire("{m}y").allowed());
  EXPECT_EQ(redis->stats().redirects, 3u);
  EXPECT_EQ(redis->stats().policy_decisions, 0u) << redis->last_error();
}

TEST(RedisClusterTest, ALiveReshardUnderConcurrentCallersAdmitsNoMoreThanTheQuota) {
  RedisCluster& c = cluster();
  const Quota quota = *Quota::parse("5/h");  // No refill during the test: 5 per key, ever.
  auto redis = make_limiter({.url = c.url(),
                             .prefix = "reshard:",
                             .default_quota = quota,
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 1s,
                             .deny_cache_keys = 0});
  ASSERT_TRUE(redis);
  constexpr std::size_t kKeys = 400;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kKeys; ++i) keys.push_back("r" + std::to_string(i));
  std::vector<int> admitted(kKeys, 0);
  for (std::size_t i = 0; i < kKeys; ++i)
    admitted[i] += redis->try_acquire(keys[i]).allowed() ? 1 : 0;

  // Move 1,000 slots from the master of the first key to another, while 4 threads call.
  const std::size_t from = c.master_of(key_slot("reshard:r0"));
  const std::size_t to = other_master(c, from);
  ASSERT_LT(to, c.size());
  Program reshard({FLOODGATE_REDIS_CLI, "--cluster", "reshard",
                   "127.0.0.1:" + std::to_string(c.node(from).port()), "--cluster-from", c.id(from),
                   "--cluster-to", c.id(to), "--cluster-slots", "1000", "--cluster-yes"});
  std::atomic<bool> stop{false};
  constexpr std::size_t kThreads = 4;
  std::vector<std::vector<int>> per_thread(kThreads, std::vector<int>(kKeys, 0));
  std::vector<std::uint64_t> calls(kThreads, 0);
  std::vector<std::chrono::steady_clock::duration> slowest(
      kThreads, std::chrono::steady_clock::duration::zero());
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(static_cast<std::uint32_t>(w));
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t i = rng() % kKeys;
        const auto start = std::chrono::steady_clock::now();
        const bool ok = redis->try_acquire(keys[i]).allowed();
        slowest[w] = std::max(slowest[w], std::chrono::steady_clock::now() - start);
        per_thread[w][i] += ok ? 1 : 0;
        ++calls[w];
      }
    });
  }
  const bool resharded = reshard.finish(120s);
  // Keep calling a little after the reshard, so that every key can use up its quota.
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(resharded) << reshard.output();

  // Every key's quota is used exactly: nothing admitted twice, nothing lost in the move.
  for (std::size_t i = 0; i < kKeys; ++i) {
    for (std::size_t w = 0; w < kThreads; ++w) admitted[i] += per_thread[w][i];
  }
  for (std::size_t i = 0; i < kKeys; ++i) {
    EXPECT_LE(admitted[i], 5) << keys[i] << " was admitted more than its quota";
  }
  // A final pass: keys the callers had not used up yet take what is left, and no more.
  for (std::size_t i = 0; i < kKeys; ++i) {
    while (redis->try_acquire(keys[i]).allowed()) ++admitted[i];
    EXPECT_EQ(admitted[i], 5) << keys[i];
  }
  const RedisLimiterStats stats = redis->stats();
  std::uint64_t total_calls = 0;
  for (const std::uint64_t n : calls) total_calls += n;
  auto worst = std::chrono::steady_clock::duration::zero();
  for (const auto d : slowest) worst = std::max(worst, d);
  std::cout << "reshard of 1000 slots under " << kThreads << " callers: " << total_calls
            << " calls, " << stats.redirects << " redirections followed, "
            << stats.topology_refreshes << " slot maps read, " << stats.policy_decisions
            << " policy decisions, slowest call "
            << std::chrono::duration<double, std::milli>(worst).count() << " ms\n";
  EXPECT_GT(stats.redirects, 0u) << "the reshard was not seen by the callers";
  EXPECT_EQ(stats.policy_decisions, 0u) << redis->last_error();
  EXPECT_EQ(stats.errors, 0u) << redis->last_error();
  EXPECT_LT(worst, kNeverHangs);
}

TEST(RedisClusterTest, ASlotThatNoMasterServesIsRetriedUntilTheDeadlineThenAnsweredByThePolicy) {
  RedisCluster& c = cluster();
  auto redis = make_limiter({.url = c.url(),
                             .prefix = "down:",
                             .default_quota = *Quota::parse("3/h"),
                             .on_failure = OnRedisFailure::FailClosed,
                             .command_timeout = 50ms,
                             .deny_cache_keys = 0});
  ASSERT_TRUE(redis);
  // The first of 3, taken by a limiter with the same rule that waits long enough for a loaded
  // machine: `redis` may time out, and a call that times out may still have run.
  auto patient = make_limiter({.url = c.url(),
                               .prefix = "down:",
                               .default_quota = *Quota::parse("3/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = 5s,
                               .deny_cache_keys = 0});
  ASSERT_TRUE(patient);
  ASSERT_EQ(patient->try_acquire("k").source, DecisionSource::Redis) << patient->last_error();
  // `redis` reads the slot map while the slot is served.
  ASSERT_TRUE(redis->connect(5s)) << redis->last_error();
  const std::uint16_t slot = key_slot("down:k");
  const std::size_t master = c.master_of(slot);
  ASSERT_LT(master, c.size());
  const std::string s = std::to_string(slot);
  // No node serves the slot: CLUSTERDOWN, retried with pauses until the call's deadline.
  for (std::size_t i = 0; i < c.size(); ++i) c.node(i).command({"CLUSTER", "DELSLOTS", s});
  const auto start = std::chrono::steady_clock::now();
  const RedisDecision d = redis->try_acquire("k");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(d.source, DecisionSource::FailClosed);
  EXPECT_NE(redis->last_error().find("CLUSTERDOWN"), std::string::npos) << redis->last_error();
  EXPECT_GE(took, 25ms) << "retried within the deadline";
  EXPECT_LT(took, kNeverHangs);
  // The master takes the slot back (its key is still there); the others learn it by gossip.
  ASSERT_EQ(text(c.node(master).command({"CLUSTER", "ADDSLOTS", s})), "OK");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  RedisDecision again = redis->try_acquire("k");
  while (again.source != DecisionSource::Redis && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    again = redis->try_acquire("k");
  }
  EXPECT_EQ(again.source, DecisionSource::Redis) << redis->last_error();
  EXPECT_TRUE(again.allowed());  // The second of 3: the key kept its state.
}

// Returns whether `replica` has received everything `master` has written (replication offsets).
bool replica_caught_up(const testing::RedisServer& master, const testing::RedisServer& replica) {
  const auto field = [](const std::string& info, std::string_view name) -> std::int64_t {
    const std::string value = testing::info_field(info, name);
    return value.empty() ? -1 : std::stoll(value);
  };
  const std::int64_t written =
      field(master.command({"INFO", "replication"}).text, "master_repl_offset");
  const std::int64_t received =
      field(replica.command({"INFO", "replication"}).text, "slave_repl_offset");
  return written >= 0 && written == received;
}

TEST(RedisClusterFailoverTest, AKilledMasterIsAnsweredByThePolicyUntilItsReplicaTakesOver) {
  RedisCluster c(3, 1);  // Its own: one of its masters dies.
  auto redis = make_limiter({.url = c.url(),
                             .prefix = "failover:",
                             .default_quota = *Quota::parse("3/h"),
                             .on_failure = OnRedisFailure::FailClosed,
                             // Room for sanitizer builds; a dead node on loopback refuses at once.
                             .command_timeout = 500ms,
                             .breaker_open_for = 100ms,
                             .deny_cache_keys = 0});
  ASSERT_TRUE(redis);
  const std::size_t master = c.master_of(key_slot("failover:k"));
  ASSERT_LT(master, c.size());
  // A key on another master, which stays up.
  std::string elsewhere;
  for (int i = 0; elsewhere.empty(); ++i) {
    const std::string key = "e" + std::to_string(i);
    if (c.master_of(key_slot("failover:" + key)) != master) elsewhere = key;
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(redis->try_acquire("k").allowed()) << redis->last_error();
  ASSERT_FALSE(redis->try_acquire("k").allowed());
  std::size_t replica = c.size();
  const std::string master_id = c.id(master);
  for (std::size_t i = 0; i < c.size(); ++i) {
    const std::string info = c.node(i).command({"INFO", "replication"}).text;
    if (info.find("role:slave") != std::string::npos &&
        info.find("master_port:" + std::to_string(c.node(master).port())) != std::string::npos) {
      replica = i;
    }
  }
  ASSERT_LT(replica, c.size());
  const auto synced_by = std::chrono::steady_clock::now() + 10s;
  while (!replica_caught_up(c.node(master), c.node(replica)) &&
         std::chrono::steady_clock::now() < synced_by) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(replica_caught_up(c.node(master), c.node(replica)));

  const std::uint64_t noscript_before = redis->stats().noscript_retries;
  c.node(master).kill();
  const auto killed = std::chrono::steady_clock::now();
  int by_policy = 0;
  int elsewhere_by_redis = 0;
  int elsewhere_calls = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  RedisDecision last{Decision(Verdict::Denied, 1, 0, 1, Nanos{1}, Nanos{0}), Instant{},
                     DecisionSource::FailClosed};
  while (std::chrono::steady_clock::now() - killed < 30s) {
    const auto start = std::chrono::steady_clock::now();
    last = redis->try_acquire("k");
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
    if (last.source == DecisionSource::Redis) break;
    EXPECT_EQ(last.source, DecisionSource::FailClosed);
    EXPECT_FALSE(last.allowed());
    ++by_policy;
    if (by_policy % 10 == 0) {
      ++elsewhere_calls;
      elsewhere_by_redis += redis->try_acquire(elsewhere).source == DecisionSource::Redis ? 1 : 0;
    }
    std::this_thread::sleep_for(5ms);
  }
  const double resumed_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_EQ(last.source, DecisionSource::Redis)
      << "Redis did not decide again within 30 s: " << redis->last_error();
  // The replica had every write: the used-up key is still used up on it.
  EXPECT_FALSE(last.allowed());
  EXPECT_GT(by_policy, 0);
  EXPECT_LT(slowest, kNeverHangs);
  // The other masters kept deciding their keys: one server's breaker, not the whole limiter's.
  EXPECT_EQ(elsewhere_by_redis, elsewhere_calls);
  // The promotion reaches the other nodes by gossip: the limiter found the new master, but a node
  // asked for its map may not know yet.
  const auto converged_by = std::chrono::steady_clock::now() + 10s;
  while (c.master_of(key_slot("failover:k")) != replica &&
         std::chrono::steady_clock::now() < converged_by) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(c.master_of(key_slot("failover:k")), replica);
  // The promoted replica had never run the script itself: it was loaded there by EVAL.
  EXPECT_GT(redis->stats().noscript_retries, noscript_before);
  std::cout << "master killed: " << by_policy << " calls answered fail-closed, Redis decided again "
            << resumed_after << " s later (node timeout 1 s), slowest call "
            << std::chrono::duration<double, std::milli>(slowest).count() << " ms; "
            << elsewhere_calls << " calls to keys on other masters meanwhile, all by Redis; "
            << redis->stats().breaker_opens << " breaker openings\n";
}

}  // namespace
}  // namespace floodgate
