// RedisLimiter against a real redis-server of the test's own: server time, exact bursts under
// concurrency, pipelining, scripts that vanish, keys that expire, bytes per key, bad options.
#include "floodgate/redis/redis_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using testing::make_limiter;
using testing::RedisServer;

RedisServer& server() {
  static RedisServer* s = new RedisServer();  // Killed by the kernel when the binary exits.
  return *s;
}

// Runs `threads` workers that each call `work(worker)` once, all released together; workers
// record, the test thread checks after joining.
template <class Work>
void run_together(std::size_t threads, Work work) {
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      work(w);
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  go.store(true);
  for (auto& t : workers) t.join();
}

TEST(RedisLimiterTest, ServerTimeDecidesAtTheServersInstant) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "servertime:",
                               .default_quota = *Quota::parse("2/h"),
                               .command_timeout = 2s});
  ASSERT_TRUE(limiter);
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  const RedisDecision first = limiter->try_acquire("k");
  const auto after = std::chrono::system_clock::now().time_since_epoch();
  ASSERT_EQ(first.source, DecisionSource::Redis) << limiter->last_error();
  EXPECT_TRUE(first.allowed());
  // The server shares this host's clock; TIME has microseconds.
  EXPECT_GE(first.at.time_since_epoch(), before - 1ms);
  EXPECT_LE(first.at.time_since_epoch(), after + 1ms);
  EXPECT_TRUE(limiter->try_acquire("k").allowed());
  const RedisDecision third = limiter->try_acquire("k");
  EXPECT_EQ(third.decision.verdict(), Verdict::Denied);
  // GCRA: the next permit is one interval (30 min) after the first, less the time since.
  EXPECT_GT(third.decision.retry_after(), 29min);
  EXPECT_LE(third.decision.retry_after(), 30min);
  EXPECT_EQ(limiter->peek("k").decision.verdict(), Verdict::Denied);
  EXPECT_EQ(limiter->peek("other").decision.verdict(), Verdict::Allowed);
}

TEST(RedisLimiterTest, OfManyConcurrentCallsExactlyTheBurstPasses) {
  for (Algorithm algorithm :
       {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::EnvoyFixedWindow}) {
    SCOPED_TRACE(std::string(to_string(algorithm)));
    auto limiter = make_limiter({.url = server().url(),
                                 .prefix = "burst:" + std::string(to_string(algorithm)) + ":",
                                 .algorithm = algorithm,
                                 .default_quota = *Quota::parse("10/h"),
                                 .on_failure = OnRedisFailure::FailClosed,
                                 .connections = 3,
                                 .command_timeout = 5s});
    ASSERT_TRUE(limiter);
    constexpr std::size_t kThreads = 16;
    constexpr int kCalls = 8;
    std::vector<int> admitted(kThreads, 0);
    std::vector<int> not_redis(kThreads, 0);
    run_together(kThreads, [&](std::size_t w) {
      for (int i = 0; i < kCalls; ++i) {
        const RedisDecision d = limiter->try_acquire("shared");
        admitted[w] += d.allowed() ? 1 : 0;
        not_redis[w] +=
            d.source == DecisionSource::Redis || d.source == DecisionSource::DenyCache ? 0 : 1;
      }
    });
    int total = 0;
    for (std::size_t w = 0; w < kThreads; ++w) {
      total += admitted[w];
      EXPECT_EQ(not_redis[w], 0) << limiter->last_error();
    }
    EXPECT_EQ(total, 10) << "of " << kThreads * std::size_t{kCalls}
                         << " calls against a burst of 10";
  }
}

// envoy_keys: Envoy's window counted as envoyproxy/ratelimit counts it, in its keys
// (prefix + key + window start in Unix seconds), every hit included, expiring with the window.
TEST(RedisLimiterTest, EnvoyKeysCountAsEnvoyRatelimitDoesInItsKeys) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "up:",
                               .algorithm = Algorithm::EnvoyFixedWindow,
                               .default_quota = Quota::per_minute(3),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = 2s,
                               .deny_cache_keys = 0,
                               .envoy_keys = true});
  ASSERT_TRUE(limiter);
  // 2025-12-02 00:00:10 UTC: the window of that minute starts at 1764633600.
  const Instant t{std::chrono::seconds(1'764'633'610)};
  for (int i = 0; i < 4; ++i) {
    const RedisDecision d = limiter->try_acquire_at("d_user_alice_", t);
    ASSERT_EQ(d.source, DecisionSource::Redis) << limiter->last_error();
    EXPECT_EQ(d.allowed(), i < 3) << i;
    EXPECT_EQ(d.decision.remaining(), static_cast<std::uint64_t>(i < 3 ? 2 - i : 0));
  }
  const std::string key = "up:d_user_alice_1764633600";
  EXPECT_EQ(server().command({"GET", key}).text, "4") << "denied hits are counted";
  const std::int64_t ttl = server().command({"TTL", key}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60);
  // A peek reads the count (GET) and writes nothing.
  const RedisDecision peek = limiter->peek_at("d_user_alice_", t, 0);
  EXPECT_FALSE(peek.allowed()) << "4 of 3";
  EXPECT_EQ(peek.decision.debt(), 1u);
  EXPECT_EQ(server().command({"GET", key}).text, "4");
  // A key no hit has made: a peek finds nothing and creates nothing.
  EXPECT_TRUE(limiter->peek_at("d_user_bob_", t, 0).allowed());
  EXPECT_EQ(server().command({"EXISTS", "up:d_user_bob_1764633600"}).integer, 0);
  // A count upstream wrote is read as ours: one process's INCRBY is the other's count.
  ASSERT_EQ(server().command({"INCRBY", "up:d_user_carol_1764633600", "3"}).integer, 3);
  EXPECT_FALSE(limiter->try_acquire_at("d_user_carol_", t).allowed());
  // The next minute is another key.
  EXPECT_TRUE(limiter->try_acquire_at("d_user_alice_", t + std::chrono::minutes(1)).allowed());
  // Each call may carry its quota; one key's count is shared whatever the quota.
  const RedisDecision ten = limiter->try_acquire_with_quota_before(
      "d_user_alice_", Quota::per_minute(10), std::chrono::steady_clock::now() + 2s);
  ASSERT_EQ(ten.source, DecisionSource::Redis) << limiter->last_error();
  EXPECT_TRUE(ten.allowed());
  // Refused where envoyproxy/ratelimit's keys cannot say the window.
  EXPECT_FALSE(RedisLimiter::create(
      {.url = server().url(), .algorithm = Algorithm::Gcra, .envoy_keys = true}));
  EXPECT_FALSE(RedisLimiter::create({.url = server().url(),
                                     .algorithm = Algorithm::EnvoyFixedWindow,
                                     .default_quota = *Quota::parse("5/500ms"),
                                     .envoy_keys = true}));
}

TEST(RedisLimiterTest, ConcurrentCallsShareRoundTrips) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "pipelined:",
                               .default_quota = Quota::per_second(1'000'000),
                               .connections = 1,
                               .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  run_together(32, [&](std::size_t w) {
    for (int i = 0; i < 100; ++i) (void)limiter->try_acquire("k" + std::to_string(w % 4));
  });
  const RedisLimiterStats s = limiter->stats();
  EXPECT_EQ(s.redis_decisions, 3200u) << limiter->last_error();
  EXPECT_LT(s.round_trips, s.commands) << "no two calls were written together";
  std::cout << "3200 calls from 32 threads on one connection: " << s.commands << " commands in "
            << s.round_trips << " round trips\n";
}

TEST(RedisLimiterTest, ScriptsComeBackAfterScriptFlushEvenInsidePipelines) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "noscript:",
                               .default_quota = Quota::per_second(1'000'000),
                               .connections = 2,
                               .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();
  for (int round = 0; round < 3; ++round) {
    const internal::Reply flushed = server().command({"SCRIPT", "FLUSH"});
    ASSERT_EQ(flushed.text, "OK") << internal::describe(flushed);
    std::atomic<int> failures{0};
    run_together(16, [&](std::size_t) {
      for (int i = 0; i < 20; ++i) {
        if (limiter->try_acquire("k").source != DecisionSource::Redis) failures.fetch_add(1);
      }
    });
    EXPECT_EQ(failures.load(), 0) << limiter->last_error();
  }
  EXPECT_GE(limiter->stats().noscript_retries, 3u);
  EXPECT_EQ(limiter->stats().errors, 0u) << limiter->last_error();
}

TEST(RedisLimiterTest, EvalshaNamesAreTheServersOwn) {
  // The SHA-1 the client computes is the one SCRIPT LOAD returns: EVALSHA finds the script.
  auto limiter = make_limiter({.url = server().url(), .prefix = "sha:", .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis);  // Loaded by EVAL.
  const std::uint64_t retries = limiter->stats().noscript_retries;
  for (int i = 0; i < 5; ++i) (void)limiter->try_acquire("k");
  EXPECT_EQ(limiter->stats().noscript_retries, retries);
}

TEST(RedisLimiterTest, ConnectOpensEveryConnectionAndLoadsTheScriptSoTheFirstCallIsOneRoundTrip) {
  for (Algorithm algorithm :
       {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::EnvoyFixedWindow}) {
    server().command({"SCRIPT", "FLUSH"});
    auto limiter = make_limiter({.url = server().url(),
                                 .prefix = "connect:" + std::string(to_string(algorithm)) + ":",
                                 .algorithm = algorithm,
                                 .connections = 3,
                                 .command_timeout = 5s});
    ASSERT_TRUE(limiter);
    const Result<void> connected = limiter->connect(10s);
    ASSERT_TRUE(connected) << connected.error().message();
    const RedisLimiterStats ready = limiter->stats();
    EXPECT_EQ(ready.connects, 3u) << to_string(algorithm);
    EXPECT_EQ(ready.decisions, 0u) << to_string(algorithm);
    EXPECT_EQ(ready.errors, 0u) << to_string(algorithm);
    EXPECT_EQ(limiter->last_error(), "");

    ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();
    const RedisLimiterStats first = limiter->stats();
    EXPECT_EQ(first.round_trips - ready.round_trips, 1u) << to_string(algorithm);
    EXPECT_EQ(first.noscript_retries, 0u) << to_string(algorithm);  // Loaded by connect.
    EXPECT_EQ(first.connects, 3u) << to_string(algorithm);
  }
}

TEST(RedisLimiterTest, LimitersOnAnothersConnectionsShareItsPoolAndKeepTheirOwnRules) {
  RedisLimiterOptions first{.url = server().url(),
                            .prefix = "share:a:",
                            .default_quota = *Quota::parse("2/h"),
                            .command_timeout = 5s};
  auto a = make_limiter(first);
  ASSERT_TRUE(a);
  RedisLimiterOptions second = a->options();  // The same connection options.
  second.prefix = "share:b:";
  second.algorithm = Algorithm::TokenBucket;
  second.default_quota = *Quota::parse("3/h");
  second.on_failure = OnRedisFailure::FailClosed;
  Result<std::unique_ptr<RedisLimiter>> b = RedisLimiter::create(second, *a);
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_TRUE(a->connect(10s)) << a->last_error();
  ASSERT_TRUE((*b)->connect(10s)) << (*b)->last_error();  // Its script; no connect of its own.
  EXPECT_EQ((*b)->stats().connects, 2u);

  int admitted_a = 0;
  int admitted_b = 0;
  for (int i = 0; i < 5; ++i) {
    admitted_a += a->try_acquire("k").allowed() ? 1 : 0;
    admitted_b += (*b)->try_acquire("k").allowed() ? 1 : 0;
  }
  EXPECT_EQ(admitted_a, 2);  // Each its own quota, algorithm and keys.
  EXPECT_EQ(admitted_b, 3);
  EXPECT_EQ(a->stats().decisions, 5u);
  EXPECT_EQ((*b)->stats().decisions, 5u);
  EXPECT_EQ((*b)->stats().redis_decisions + (*b)->stats().deny_cache_hits, 5u);
  EXPECT_EQ(a->stats().connects, 2u);  // Both limiters' calls on the same two connections.
  EXPECT_EQ((*b)->stats().connects, 2u);

  // The connections live as long as any limiter on them.
  a.reset();
  EXPECT_EQ((*b)->try_acquire("other").source, DecisionSource::Redis) << (*b)->last_error();

  // Connections are shared only with the same settings; the limiter's own options are checked.
  RedisLimiterOptions more = second;
  more.connections = 3;
  Result<std::unique_ptr<RedisLimiter>> refused = RedisLimiter::create(more, **b);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("connections 3 differs from the shared limiter's 2"),
            std::string::npos)
      << refused.error().message();
  RedisLimiterOptions elsewhere = second;
  elsewhere.url = "redis://127.0.0.1:1";
  refused = RedisLimiter::create(elsewhere, **b);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("url \"redis://127.0.0.1:1\" differs"),
            std::string::npos)
      << refused.error().message();
  RedisLimiterOptions bad_share = second;
  bad_share.fallback_share = 2.0;
  refused = RedisLimiter::create(bad_share, **b);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("fallback_share"), std::string::npos)
      << refused.error().message();
}

// A request's calls on several limiters (several rules) go to Redis in one write: one round
// trip, each decided as its limiter alone decides, in the order given (two calls on one key in
// one batch see each other).
TEST(RedisLimiterTest, DecideAllSendsEveryCallInOneRoundTrip) {
  server().command({"SCRIPT", "FLUSH"});  // The first batch also reloads its scripts.
  auto gcra = make_limiter({.url = server().url(),
                            .prefix = "all:gcra:",
                            .default_quota = *Quota::parse("2/h"),
                            .on_failure = OnRedisFailure::FailClosed,
                            .command_timeout = 5s});
  ASSERT_TRUE(gcra);
  RedisLimiterOptions o = gcra->options();
  o.prefix = "all:bucket:";
  o.algorithm = Algorithm::TokenBucket;
  o.default_quota = *Quota::parse("1/h");
  auto bucket = RedisLimiter::create(o, *gcra);
  ASSERT_TRUE(bucket) << bucket.error().message();
  o.prefix = "all:envoy:";
  o.algorithm = Algorithm::EnvoyFixedWindow;
  o.default_quota = *Quota::parse("3/h");
  o.envoy_keys = true;
  auto envoy = RedisLimiter::create(o, *gcra);
  ASSERT_TRUE(envoy) << envoy.error().message();
  ASSERT_TRUE(gcra->connect(10s)) << gcra->last_error();

  const Quota own = *Quota::parse("1/h");
  const auto batch = [&] {
    std::vector<RedisCall> calls = {
        {.limiter = gcra.get(), .key = "a"},
        {.limiter = bucket->get(), .key = "a"},
        {.limiter = envoy->get(), .key = "d_k_v_", .cost = 2},
        {.limiter = gcra.get(), .key = "a"},  // The same key again: sees the first call.
        {.limiter = gcra.get(), .key = "b", .peek = true},
        {.limiter = envoy->get(), .key = "d_k_w_", .quota = &own},
    };
    return calls;
  };
  const RedisLimiterStats before = gcra->stats();
  std::vector<RedisCall> first = batch();
  RedisLimiter::decide_all(first);
  const RedisLimiterStats after = gcra->stats();
  // One write and its replies, and one more for the script that `connect` of the GCRA limiter
  // did not load after the flush (the token bucket's, sent again as EVAL).
  EXPECT_EQ(after.round_trips - before.round_trips, 2u);
  EXPECT_EQ(after.noscript_retries - before.noscript_retries, 1u);
  const std::vector<bool> admitted = {true, true, true, true, true, true};
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].decision.source, DecisionSource::Redis) << i << ": " << gcra->last_error();
    EXPECT_EQ(first[i].decision.allowed(), admitted[i]) << i;
  }
  EXPECT_EQ(first[3].decision.decision.remaining(), 0u) << "the second of 2/h";

  // Scripts loaded: one round trip for all six.
  std::vector<RedisCall> second = batch();
  RedisLimiter::decide_all(second);
  EXPECT_EQ(gcra->stats().round_trips - after.round_trips, 1u);
  // 2/h used; 1/h used; 2 + 2 > 3/h; used; a peek of a fresh key; the own limit of 1 used.
  const std::vector<bool> again = {false, false, false, false, true, false};
  for (std::size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(second[i].decision.allowed(), again[i]) << i;
    EXPECT_EQ(second[i].decision.failure, RedisFailure::None) << i;
  }
  // Each limiter counted its own calls.
  EXPECT_EQ(gcra->stats().decisions - before.decisions, 6u);
  EXPECT_EQ((*bucket)->stats().decisions, 2u);
  EXPECT_EQ((*envoy)->stats().decisions, 4u);
  // Every hit counted, as envoyproxy/ratelimit counts, in its key (its window's start: one key,
  // unless the hour turned during the test).
  const internal::Reply keys = server().command({"KEYS", "all:envoy:d_k_v_*"});
  std::int64_t counted = 0;
  for (const internal::Reply& key : keys.elements) {
    counted += std::stoll(server().command({"GET", key.text}).text);
  }
  EXPECT_EQ(counted, 4) << "2 and 2 hits";
}

// Calls whose deadline has passed are decided at once, by the policy, and say why.
TEST(RedisLimiterTest, DecideAllAnswersCallsOutOfTimeWithoutARoundTrip) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "late:",
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  const RedisLimiterStats before = limiter->stats();
  std::vector<RedisCall> calls = {{.limiter = limiter.get(), .key = "a"},
                                  {.limiter = limiter.get(), .key = "b"}};
  RedisLimiter::decide_all(calls, std::chrono::steady_clock::now());
  for (const RedisCall& call : calls) {
    EXPECT_EQ(call.decision.source, DecisionSource::FailClosed);
    EXPECT_EQ(call.decision.failure, RedisFailure::OutOfTime);
  }
  EXPECT_EQ(limiter->stats().round_trips, before.round_trips);
  EXPECT_EQ(limiter->stats().deadline_refusals - before.deadline_refusals, 2u);
}

TEST(RedisLimiterTest, KeysExpireWhenTheirBucketIsFullAgain) {
  server().command({"FLUSHALL"});
  // Caller time: the TTL is the time the bucket takes to refill, on the server's clock.
  auto slow = make_limiter({.url = server().url(),
                            .prefix = "ttl:",
                            .default_quota = Quota::per_minute(2),
                            .command_timeout = 5s});
  ASSERT_TRUE(slow);
  ASSERT_TRUE(slow->try_acquire_at("k", Instant{Nanos{1'000'000'000'000}}).allowed());
  const internal::Reply pttl = server().command({"PTTL", "ttl:k"});
  ASSERT_EQ(pttl.type, internal::Reply::Type::Integer) << internal::describe(pttl);
  EXPECT_LE(pttl.integer, 30'000);  // One permit of 2/min: 30 s.
  EXPECT_GT(pttl.integer, 25'000);

  // `ttl_slack` lengthens every algorithm's TTL by itself, for instants slower than real time.
  for (Algorithm algorithm :
       {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::EnvoyFixedWindow}) {
    const std::string prefix = "slack:" + std::string(to_string(algorithm)) + ":";
    auto slack = make_limiter({.url = server().url(),
                               .prefix = prefix,
                               .algorithm = algorithm,
                               .default_quota = Quota::per_minute(2),
                               .command_timeout = 5s,
                               .ttl_slack = 1h});
    ASSERT_TRUE(slack);
    ASSERT_TRUE(slack->try_acquire_at("k", Instant{Nanos{1'000'000'000'000}}).allowed());
    const std::int64_t with_slack = server().command({"PTTL", prefix + "k"}).integer;
    EXPECT_GT(with_slack, 3'600'000) << to_string(algorithm);
    EXPECT_LE(with_slack, 3'600'000 + 60'001) << to_string(algorithm);
    server().command({"DEL", prefix + "k"});
  }

  // Every algorithm leaves nothing behind once its buckets are full: DBSIZE reaches 0.
  for (Algorithm algorithm :
       {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::EnvoyFixedWindow}) {
    auto fast = make_limiter({.url = server().url(),
                              .prefix = "ttl:" + std::string(to_string(algorithm)) + ":",
                              .algorithm = algorithm,
                              .default_quota = *Quota::parse("100/100ms burst 100"),
                              .command_timeout = 5s});
    ASSERT_TRUE(fast);
    for (int k = 0; k < 50; ++k) {
      for (int i = 0; i < 3; ++i) (void)fast->try_acquire("key" + std::to_string(k));
    }
  }
  server().command({"DEL", "ttl:k"});
  EXPECT_GT(server().command({"DBSIZE"}).integer, 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::int64_t keys = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    keys = server().command({"DBSIZE"}).integer;
    if (keys == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(keys, 0) << "keys left after their buckets were full again";
  // Nothing without a TTL was ever written: a key without one would have stayed.
}

TEST(RedisLimiterTest, ReportsBytesPerKey) {
  // An 11-byte key: the prefix "fg:" and 8 bytes.
  for (Algorithm algorithm :
       {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::EnvoyFixedWindow}) {
    server().command({"DEL", "fg:12345678"});
    auto limiter = make_limiter({.url = server().url(),
                                 .prefix = "fg:",
                                 .algorithm = algorithm,
                                 .default_quota = Quota::per_minute(10),
                                 .command_timeout = 5s});
    ASSERT_TRUE(limiter);
    ASSERT_TRUE(limiter->try_acquire("12345678").allowed()) << limiter->last_error();
    const internal::Reply bytes = server().command({"MEMORY", "USAGE", "fg:12345678"});
    ASSERT_EQ(bytes.type, internal::Reply::Type::Integer) << internal::describe(bytes);
    std::cout << to_string(algorithm) << ": MEMORY USAGE of an 11-byte key = " << bytes.integer
              << " bytes\n";
    ::testing::Test::RecordProperty(std::string(to_string(algorithm)) + "_bytes_per_key",
                                    static_cast<int>(bytes.integer));
    if (algorithm == Algorithm::Gcra) {
      EXPECT_LE(bytes.integer, 100);
    }
  }
}

TEST(RedisLimiterTest, AUnixSocketWorksAsTcpDoes) {
  auto limiter = make_limiter({.url = server().unix_url(),
                               .prefix = "unix:",
                               .default_quota = *Quota::parse("1/h"),
                               .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  EXPECT_TRUE(limiter->try_acquire("k").allowed()) << limiter->last_error();
  EXPECT_FALSE(limiter->try_acquire("k").allowed());
  EXPECT_EQ(limiter->stats().redis_decisions, 2u);
}

TEST(RedisLimiterTest, TheDenyCacheAnswersRepeatedDenialsWithoutARoundTrip) {
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "denycache:",
                               .default_quota = *Quota::parse("5/h"),
                               .command_timeout = 5s});
  ASSERT_TRUE(limiter);
  const Instant t0{Nanos{1'800'000'000'000'000'000}};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(limiter->try_acquire_at("k", t0).allowed());
  const RedisDecision first = limiter->try_acquire_at("k", t0);
  ASSERT_EQ(first.source, DecisionSource::Redis);
  ASSERT_EQ(first.decision.verdict(), Verdict::Denied);
  const std::uint64_t trips = limiter->stats().commands;
  // Before retry_after, the same cost is denied locally with the remaining wait, and a larger
  // one with its own, longer wait: each as the rule decides on the state Redis reported.
  const RedisDecision cached = limiter->try_acquire_at("k", t0 + 1min);
  EXPECT_EQ(cached.source, DecisionSource::DenyCache);
  EXPECT_EQ(cached.decision.verdict(), Verdict::Denied);
  EXPECT_EQ(cached.decision.retry_after(), first.decision.retry_after() - 1min);
  const RedisDecision larger = limiter->try_acquire_at("k", t0 + 1min, 2);
  EXPECT_EQ(larger.source, DecisionSource::DenyCache);
  EXPECT_EQ(larger.decision.retry_after(), first.decision.retry_after() - 1min + 12min);
  EXPECT_EQ(limiter->stats().commands, trips);
  // A smaller cost, or an instant past retry_after, goes to Redis.
  EXPECT_EQ(limiter->try_acquire_at("k", t0 + 1min, 0).source, DecisionSource::Redis);
  const RedisDecision later = limiter->try_acquire_at("k", t0 + first.decision.retry_after());
  EXPECT_EQ(later.source, DecisionSource::Redis);
  EXPECT_TRUE(later.allowed());
}

// A deny-heavy trace (one key far over its quota) decides the same with and without the deny
// cache, and the cache saves most round trips.
TEST(RedisLimiterTest, TheDenyCacheNeverDeniesWhatRedisWouldAdmit) {
  for (Algorithm algorithm : {Algorithm::Gcra, Algorithm::TokenBucket}) {
    SCOPED_TRACE(std::string(to_string(algorithm)));
    const std::string name(to_string(algorithm));
    auto cached = make_limiter({.url = server().url(),
                                .prefix = "dc1:" + name + ":",
                                .algorithm = algorithm,
                                .default_quota = *Quota::parse("10/min burst 3"),
                                .command_timeout = 5s,
                                .ttl_slack = 1h});  // Trace time: no key expires early.
    auto plain = make_limiter({.url = server().url(),
                               .prefix = "dc2:" + name + ":",
                               .algorithm = algorithm,
                               .default_quota = *Quota::parse("10/min burst 3"),
                               .command_timeout = 5s,
                               .ttl_slack = 1h,
                               .deny_cache_keys = 0});
    ASSERT_TRUE(cached && plain);
    std::int64_t t = 1'800'000'000'000'000'000;
    int denied = 0;
    for (int i = 0; i < 2000; ++i) {
      t += 37'000'000;  // 27 calls a second against 10 a minute.
      const std::uint64_t cost = 1 + static_cast<std::uint64_t>(i % 3);
      const RedisDecision a = cached->try_acquire_at("hot", Instant{Nanos{t}}, cost);
      const RedisDecision b = plain->try_acquire_at("hot", Instant{Nanos{t}}, cost);
      ASSERT_EQ(a.allowed(), b.allowed()) << "call " << i;
      ASSERT_EQ(a.decision.retry_after(), b.decision.retry_after()) << "call " << i;
      denied += a.allowed() ? 0 : 1;
    }
    const RedisLimiterStats s = cached->stats();
    std::cout << name << ": 2000 calls, " << denied << " denied, " << s.deny_cache_hits
              << " answered by the deny cache (round trips saved), " << s.commands
              << " commands sent\n";
    EXPECT_GT(s.deny_cache_hits, 1500u);
  }
}

TEST(RedisLimiterTest, BadOptionsAreRejectedWithTheValue) {
  const struct {
    RedisLimiterOptions options;
    const char* says;
  } cases[] = {
      {{.url = "localhost:6379"}, "redis URL \"localhost:6379\""},
      {{.url = "redis://h:99999"}, "port must be 1 to 65535 (got \"99999\")"},
      {{.fallback_share = 0.0}, "fallback_share must be in (0, 1] (got 0.000000)"},
      {{.fallback_share = 1.5}, "fallback_share must be in (0, 1]"},
      {{.algorithm = Algorithm::EnvoyFixedWindow, .default_quota = *Quota::parse("10/1500ms")},
       "whole seconds or one that divides a second (got 1500000000 ns)"},
      {{.command_timeout = Nanos::zero()}, "must be positive"},
      {{.ttl_slack = -1ms}, "ttl_slack must be from 0 to 10 years (got -1000000 ns)"},
  };
  for (const auto& c : cases) {
    auto limiter = RedisLimiter::create(c.options);
    ASSERT_FALSE(limiter) << c.says;
    EXPECT_NE(limiter.error().message().find(c.says), std::string::npos)
        << limiter.error().message();
  }
}

TEST(RedisLimiterTest, AKeyHoldingSomethingElseIsAnErrorForThatKeyOnly) {
  server().command({"SET", "foreign:k", "not a state"});
  server().command({"RPUSH", "foreign:list", "x"});
  auto limiter = make_limiter({.url = server().url(),
                               .prefix = "foreign:",
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = 5s,
                               .breaker_failures = 1});
  ASSERT_TRUE(limiter);
  const RedisDecision d = limiter->try_acquire("k");
  EXPECT_EQ(d.source, DecisionSource::FailClosed);
  EXPECT_NE(limiter->last_error().find("does not hold a GCRA state"), std::string::npos)
      << limiter->last_error();
  EXPECT_EQ(limiter->try_acquire("list").source, DecisionSource::FailClosed);
  EXPECT_NE(limiter->last_error().find("WRONGTYPE"), std::string::npos) << limiter->last_error();
  // The server is healthy: other keys are still decided by Redis (the breaker stayed closed).
  EXPECT_EQ(limiter->try_acquire("fine").source, DecisionSource::Redis) << limiter->last_error();
  EXPECT_EQ(limiter->stats().breaker_opens, 0u);
}

}  // namespace
}  // namespace floodgate
