// The Redis limiters decide as the in-process ones: the same random traces (caller instants,
// several keys and quotas, stale instants, costs from 0 to above the burst, instants at the ends
// of the range) through `RedisLimiter` and through `KeyedLimiter`, compared decision by decision.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "floodgate/core/internal/time_math.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using testing::RedisServer;

// Traces run seconds of their own time in milliseconds of real time, and stand still at times;
// keys expire on Redis's clock, so without slack a key whose TTL is a millisecond (a window about
// to end) could expire between two calls at one trace instant on a loaded machine, and Redis
// would start over where the model does not.
constexpr auto kTraceSlack = std::chrono::hours(1);

RedisServer& server() {
  static RedisServer* s = new RedisServer();  // Killed by the kernel when the binary exits.
  return *s;
}

struct Step {
  std::string key;
  std::int64_t t;
  std::uint64_t cost;
};

// A trace whose instants mostly advance by up to two intervals per call, sometimes go back
// (stale), and whose costs run from 0 to one above the burst.
std::vector<Step> random_trace(std::uint32_t seed, std::int64_t start, std::int64_t interval,
                               std::uint64_t burst, int n) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> keys = {"a", "b", "vip:c", "{tag}d", "e\xff\x01"};
  std::vector<Step> out;
  std::int64_t t = start;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t roll = rng() % 100;
    if (roll < 5) {
      out.push_back(
          {keys[rng() % keys.size()],
           t - static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(interval * 3)), 1});
      continue;
    }
    if (roll < 70) t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(interval * 2));
    const std::uint64_t c = rng() % 10;
    const std::uint64_t cost = c == 0 ? 0 : c == 1 ? burst + 1 : c == 2 ? burst : 1 + rng() % burst;
    out.push_back({keys[rng() % keys.size()], t, cost});
  }
  return out;
}

template <class Rule>
void expect_same_decisions(Algorithm algorithm, const Quota& quota, const Quota& vip,
                           const std::vector<Step>& trace, const std::string& prefix,
                           int at_least_each = 50, std::size_t deny_cache_keys = 0) {
  const auto resolver = [vip](std::string_view key) -> std::optional<Quota> {
    if (key.starts_with("vip:")) return vip;
    return std::nullopt;
  };
  auto redis = RedisLimiter::create({.url = server().url(),
                                     .prefix = prefix,
                                     .algorithm = algorithm,
                                     .default_quota = quota,
                                     .resolver = resolver,
                                     .on_failure = OnRedisFailure::FailClosed,
                                     .connect_timeout = std::chrono::seconds(2),
                                     .command_timeout = std::chrono::seconds(2),
                                     .ttl_slack = kTraceSlack,
                                     .deny_cache_keys = deny_cache_keys});
  ASSERT_TRUE(redis) << redis.error().message();
  KeyedLimiter<std::string, Rule, SteadyClock, Threads::One> local{
      {.default_quota = quota, .max_keys = 100, .resolver = resolver}};
  int admitted = 0;
  int denied = 0;
  for (std::size_t i = 0; i < trace.size(); ++i) {
    const Step& s = trace[i];
    const Instant at{Nanos{s.t}};
    const bool peek = i % 7 == 3;
    const RedisDecision got =
        peek ? (*redis)->peek_at(s.key, at, s.cost) : (*redis)->try_acquire_at(s.key, at, s.cost);
    const Decision want =
        peek ? local.peek_at(s.key, at, s.cost) : local.try_acquire_at(s.key, at, s.cost);
    ASSERT_TRUE(got.source == DecisionSource::Redis ||
                (deny_cache_keys != 0 && got.source == DecisionSource::DenyCache))
        << (*redis)->last_error();
    ASSERT_EQ(got.decision, want) << "step " << i << " key " << s.key << " t " << s.t << " cost "
                                  << s.cost << (peek ? " (peek)" : "") << ": redis "
                                  << to_string(got.decision) << ", in-process " << to_string(want);
    ASSERT_EQ(got.at.time_since_epoch().count(), internal::clamped_nanos(at));
    (want.allowed() ? admitted : denied) += 1;
  }
  // The trace exercised both answers.
  EXPECT_GT(admitted, at_least_each);
  EXPECT_GT(denied, at_least_each);
}

const std::int64_t kUnixNow = 1'764'662'400'000'000'000;  // 2025-12-02, about.

TEST(RedisDifferentialTest, GcraDecidesAsTheInProcessLimiter) {
  const Quota quotas[] = {Quota::per_minute(5), *Quota::parse("7/13min burst 3"),
                          *Quota::parse("100/h burst 10"), *Quota::parse("1/d")};
  std::uint32_t seed = 1;
  for (const Quota& q : quotas) {
    SCOPED_TRACE(q.to_string());
    expect_same_decisions<GcraRule>(
        Algorithm::Gcra, q, *Quota::parse("3/min"),
        random_trace(seed, kUnixNow, q.interval().count(), q.burst(), 1500),
        "diff:gcra:" + std::to_string(seed) + ":");
    ++seed;
  }
}

// With the deny cache on, the denials answered locally are the ones Redis would give, field by
// field: the cache decides with the rule, on the state Redis last reported.
TEST(RedisDifferentialTest, TheDenyCacheDecidesAsTheInProcessLimiter) {
  const Quota q = *Quota::parse("7/13min burst 3");
  const auto trace = random_trace(77, kUnixNow, q.interval().count(), q.burst(), 1500);
  expect_same_decisions<GcraRule>(Algorithm::Gcra, q, *Quota::parse("3/min"), trace,
                                  "diff:cache:gcra:", 50, 1000);
  expect_same_decisions<TokenBucketRule>(Algorithm::TokenBucket, q, *Quota::parse("3/min"), trace,
                                         "diff:cache:tb:", 50, 1000);
}

TEST(RedisDifferentialTest, TokenBucketDecidesAsTheInProcessLimiter) {
  const Quota quotas[] = {Quota::per_minute(5), *Quota::parse("7/13min burst 3"),
                          *Quota::parse("3/7min burst 2"), *Quota::parse("1000/h burst 40")};
  std::uint32_t seed = 100;
  for (const Quota& q : quotas) {
    SCOPED_TRACE(q.to_string());
    expect_same_decisions<TokenBucketRule>(
        Algorithm::TokenBucket, q, *Quota::parse("3/min"),
        random_trace(seed, kUnixNow, q.interval().count(), q.burst(), 1500),
        "diff:tb:" + std::to_string(seed) + ":");
    ++seed;
  }
}

// Instants at and beyond the ends of the clamp range, negative ones, and jumps between them:
// the script's 64-bit arithmetic on two Lua numbers must agree with the C++ rule's.
TEST(RedisDifferentialTest, ExtremeInstantsDecideAsTheInProcessLimiter) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t points[] = {kMin,
                                 -internal::kTimeLimit - 1,
                                 -internal::kTimeLimit,
                                 -internal::kTimeLimit + 1,
                                 -1'000'000'000'000'000'001,
                                 -1'000'000'000,
                                 -999'999'999,
                                 -1,
                                 0,
                                 1,
                                 999'999'999,
                                 1'000'000'000,
                                 kUnixNow,
                                 internal::kTimeLimit - 1,
                                 internal::kTimeLimit,
                                 kMax};
  std::mt19937_64 rng(7);
  std::vector<Step> trace;
  for (int i = 0; i < 600; ++i) {
    std::int64_t t = points[rng() % std::size(points)];
    if (rng() % 3 == 0) t = static_cast<std::int64_t>(rng());
    if (rng() % 4 == 0)
      t = internal::saturating_add(t, static_cast<std::int64_t>(rng() % 200'000'000'000));
    trace.push_back({rng() % 2 == 0 ? "x" : "y", t, rng() % 5});
  }
  const Quota q = *Quota::parse("3/d burst 3");
  expect_same_decisions<GcraRule>(Algorithm::Gcra, q, q, trace, "diff:extreme:gcra:", 20);
  expect_same_decisions<TokenBucketRule>(Algorithm::TokenBucket, q, q, trace,
                                         "diff:extreme:tb:", 20);
}

// envoyproxy/ratelimit's fixed window, as an independent model: each key holds its window and
// the hits counted in it, denied ones included; a hit is over the limit when the count after it
// is above the limit; an instant in an older window than the stored one counts nothing.
TEST(RedisDifferentialTest, FixedWindowCountsAsEnvoyRatelimit) {
  for (const char* text : {"10/min", "3/250ms", "4/2s", "7/1min"}) {
    SCOPED_TRACE(text);
    const Quota q = *Quota::parse(text);
    auto redis = RedisLimiter::create({.url = server().url(),
                                       .prefix = std::string("diff:fw:") + text + ":",
                                       .algorithm = Algorithm::EnvoyFixedWindow,
                                       .default_quota = q,
                                       .on_failure = OnRedisFailure::FailClosed,
                                       .connect_timeout = std::chrono::seconds(2),
                                       .command_timeout = std::chrono::seconds(2),
                                       .ttl_slack = kTraceSlack,
                                       .deny_cache_keys = 0});
    ASSERT_TRUE(redis) << redis.error().message();
    struct Window {
      std::int64_t start;
      std::uint64_t count;
    };
    std::map<std::string, Window> model;
    const std::int64_t period = q.period().count();
    std::mt19937_64 rng(std::hash<std::string_view>{}(text));
    std::int64_t t = kUnixNow + 12'345;
    int admitted = 0;
    int denied = 0;
    for (int i = 0; i < 1500; ++i) {
      const std::string key = rng() % 2 == 0 ? "k1" : "k2";
      std::int64_t at = t;
      if (rng() % 20 == 0) at -= period * static_cast<std::int64_t>(1 + rng() % 2);
      if (rng() % 3 == 0)
        t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(period / 2));
      const std::uint64_t cost = rng() % 8 == 0 ? q.count() + 1 : rng() % 3;
      const RedisDecision got = (*redis)->try_acquire_at(key, Instant{Nanos{at}}, cost);
      ASSERT_EQ(got.source, DecisionSource::Redis) << (*redis)->last_error();
      const std::int64_t start = internal::floor_div(at, period) * period;
      auto found = model.find(key);
      if (found != model.end() && start < found->second.start) {
        ASSERT_FALSE(got.allowed()) << "step " << i << ": a stale instant was admitted";
        continue;
      }
      const std::uint64_t before =
          found != model.end() && found->second.start == start ? found->second.count : 0;
      const std::uint64_t count = before + cost;
      if (cost > 0) model[key] = {start, count};
      const bool allowed = cost <= q.count() && count <= q.count();
      ASSERT_EQ(got.allowed(), allowed) << "step " << i << " t " << at << " cost " << cost
                                        << " count " << count << ": " << to_string(got.decision);
      ASSERT_EQ(got.decision.remaining(), count >= q.count() ? 0 : q.count() - count);
      if (!allowed && cost <= q.count()) {
        ASSERT_EQ(got.decision.retry_after(), Nanos{start + period - at});
      }
      (allowed ? admitted : denied) += 1;
    }
    EXPECT_GT(admitted, 100);
    EXPECT_GT(denied, 100);
  }
}

}  // namespace
}  // namespace floodgate
