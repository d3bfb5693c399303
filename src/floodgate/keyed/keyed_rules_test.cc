// KeyedLimiter over every rule, windows included: each key decides as the rule's own limiter
// would, dropping full state never changes a decision, the sliding log's heap memory is counted
// and bounded, and limits given per call (Envoy's own limits) are each enforced.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/rules.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testkit/gtest.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

std::string user(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "user:%06d", i);
  return buf;
}

// The reference: the rule's state per key in an unbounded map, never dropped.
template <class Rule>
class UnboundedModel {
  using Impl = typename Rule::Impl;

 public:
  UnboundedModel() = default;
  UnboundedModel(const UnboundedModel&) = delete;
  UnboundedModel& operator=(const UnboundedModel&) = delete;
  ~UnboundedModel() {
    for (auto& [key, state] : states_) internal::release_state<Impl>(state);
  }
  Decision try_acquire_at(const std::string& key, const Quota& quota, Instant now,
                          std::uint64_t cost) {
    const auto it = states_.try_emplace(key, Impl::kFull).first;
    const auto step = Impl::acquire(it->second, now, cost, Impl::params(quota));
    it->second = step.state;
    return step.decision;
  }

 private:
  std::map<std::string, typename Impl::State> states_;
};

// The single-key limiter of each rule, where there is one.
template <class Rule>
struct LimiterFor {
  using Type = void;
};
template <>
struct LimiterFor<GcraRule> {
  using Type = GcraLimiter<ManualClock>;
};
template <>
struct LimiterFor<TokenBucketRule> {
  using Type = TokenBucketLimiter<ManualClock>;
};
template <>
struct LimiterFor<FixedWindowRule> {
  using Type = FixedWindowLimiter<ManualClock>;
};
template <>
struct LimiterFor<SlidingLogRule> {
  using Type = SlidingWindowLogLimiter<ManualClock>;
};
template <>
struct LimiterFor<SlidingCounterRule> {
  using Type = SlidingWindowCounterLimiter<ManualClock>;
};

template <class Rule>
class KeyedRulesTest : public testing::Test {
 protected:
  using Keyed = KeyedLimiter<std::string, Rule, ManualClock>;
};
using AllRules = testing::Types<GcraRule, TokenBucketRule, FixedWindowRule, SlidingLogRule,
                                SlidingCounterRule, EnvoyFixedWindowRule>;
TYPED_TEST_SUITE(KeyedRulesTest, AllRules);

TYPED_TEST(KeyedRulesTest, EachKeyDecidesAsItsOwnLimiter) {
  const Quota quota = Quota::per_second(10);
  typename TestFixture::Keyed keyed{{.default_quota = quota, .max_keys = 100}};
  UnboundedModel<TypeParam> model;
  using Limiter = typename LimiterFor<TypeParam>::Type;
  std::mt19937_64 rng(3);
  Instant now = t0;
  for (int i = 0; i < 3000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
    const std::uint64_t cost = rng() % 25 == 0 ? 11 : rng() % 4;  // 11: above the limit.
    const std::string key = rng() % 4 != 0 ? "hot" : "cold";
    const Decision got = keyed.try_acquire_at(key, now, cost);
    ASSERT_EQ(got, model.try_acquire_at(key, quota, now, cost)) << "call " << i << " on " << key;
  }
  if constexpr (!std::is_void_v<Limiter>) {
    // And the model is the rule's own limiter, call for call.
    Limiter limiter{quota};
    UnboundedModel<TypeParam> again;
    Instant at = t0;
    for (int i = 0; i < 3000; ++i) {
      at += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
      const std::uint64_t cost = rng() % 4;
      ASSERT_EQ(limiter.try_acquire_at(at, cost), again.try_acquire_at("k", quota, at, cost))
          << "call " << i;
    }
  }
  EXPECT_EQ(keyed.stats().keys, 2u);
}

TYPED_TEST(KeyedRulesTest, DroppingFullStateNeverChangesADecision) {
  const Quota quota = *Quota::make(milliseconds(100), 3, 3);
  for (const std::size_t shards : {1u, 4u}) {
    typename TestFixture::Keyed keyed{
        {.default_quota = quota, .max_keys = 64, .shards = shards, .hash_seed = 20261207}};
    UnboundedModel<TypeParam> model;
    std::mt19937_64 rng(11);
    Instant now = t0;
    for (int i = 0; i < 100'000; ++i) {
      // About 50 calls a second over 5,000 keys, each key's state full again within 200 ms of
      // its last call: far more keys than room, never more than the room busy at once.
      now += Nanos{static_cast<std::int64_t>(rng() % 40'000'000)};
      const std::string key = user(static_cast<int>(rng() % 5000));
      const std::uint64_t cost = rng() % 50 == 0 ? 4 : rng() % 3;  // 4: above the limit.
      ASSERT_EQ(keyed.try_acquire_at(key, now, cost), model.try_acquire_at(key, quota, now, cost))
          << "call " << i << " on " << key << " with " << shards << " shard(s)";
      if (i % 1000 == 999) (void)keyed.sweep(now);
    }
    const KeyedLimiterStats stats = keyed.stats();
    EXPECT_EQ(stats.overflow_decisions, 0u) << "the trace never needed the overflow policy";
    EXPECT_GT(stats.lossless_drops, 50'000u);
    EXPECT_LE(stats.keys, 64u);
  }
}

TYPED_TEST(KeyedRulesTest, AFullLimiterHoldsNewKeysOffAndResetsNobody) {
  const Quota quota = Quota::per_second(2);
  typename TestFixture::Keyed keyed{{.default_quota = quota, .max_keys = 2, .shards = 1}};
  ASSERT_TRUE(keyed.try_acquire_at("a", t0, 2).allowed());
  ASSERT_TRUE(keyed.try_acquire_at("b", t0 + milliseconds(100), 2).allowed());
  const Decision d = keyed.try_acquire_at("c", t0 + milliseconds(200));
  EXPECT_EQ(d.verdict(), Verdict::TooManyKeys);
  EXPECT_GT(d.retry_after(), Nanos::zero());
  EXPECT_LT(d.retry_after(), kNever);
  for (const char* key : {"a", "b"}) {
    EXPECT_FALSE(keyed.peek_at(key, t0 + milliseconds(200), 1).allowed()) << key;
  }
  EXPECT_EQ(keyed.stats().too_many_keys, 1u);
}

TEST(KeyedSlidingLogTest, LogsAreCountedInBytesAndFreedWithTheirKeys) {
  const Quota quota = Quota::per_second(100);
  KeyedLimiter<std::string, SlidingLogRule, ManualClock> keyed{
      {.default_quota = quota, .max_keys = 100, .overflow = OverflowPolicy::AdmitUntracked}};
  const std::uint64_t empty = keyed.stats().bytes;
  // 10,000 keys, each admitting its whole limit one permit at a time: only the first 100 keep a
  // log; the others are decided as fresh keys, without state.
  for (int k = 0; k < 10'000; ++k) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(keyed.try_acquire_at(user(k), t0 + Nanos{i}, 1).allowed()) << k << " " << i;
    }
    ASSERT_EQ(keyed.try_acquire_at(user(k), t0 + Nanos{100}, 1).allowed(), k >= 100) << k;
  }
  const KeyedLimiterStats full = keyed.stats();
  EXPECT_EQ(full.keys, 100u);
  // Each log: at most 2 x 100 entries of 24 bytes, and the vector's slack, and itself.
  EXPECT_GT(full.bytes, empty + 100u * 100 * 24);
  EXPECT_LE(full.bytes, 64u * 256 + 100u * (4 * 200 * 24 + 128));
  // Once their windows have passed, the logs go with their keys (ASan checks the frees).
  EXPECT_EQ(keyed.sweep(t0 + seconds(2)), 100u);
  EXPECT_EQ(keyed.stats().keys, 0u);
  EXPECT_LE(keyed.stats().bytes, 64u * 256) << "only the table is left";
}

TEST(KeyedEnvoyWindowTest, LimitsGivenWithEachCallAreEachEnforced) {
  // More distinct limits than tiers could hold, each in its key as Envoy's own limits are.
  KeyedLimiter<std::string, EnvoyFixedWindowRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(1), .max_keys = 10'000}};
  UnboundedModel<EnvoyFixedWindowRule> model;
  std::mt19937_64 rng(5);
  Instant now = t0;
  for (int i = 0; i < 50'000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 2'000'000)};
    const auto limit = static_cast<std::uint64_t>(1 + rng() % 1000);
    const Quota quota = *Quota::make(seconds(1), limit, limit);
    const std::string key = std::to_string(limit) + "|" + user(static_cast<int>(rng() % 3));
    const std::uint64_t cost = rng() % 3;
    ASSERT_EQ(keyed.try_acquire_with_quota_at(key, quota, now, cost),
              model.try_acquire_at(key, quota, now, cost))
        << "call " << i << " on " << key;
  }
  EXPECT_EQ(keyed.stats().tier_overflows, 0u);
  // Denied hits count: a client that keeps trying stays over until the window ends.
  const Quota two = *Quota::make(seconds(1), 2, 2);
  const Instant w{seconds(5000)};
  EXPECT_TRUE(keyed.try_acquire_with_quota_at("two", two, w, 2).allowed());
  EXPECT_FALSE(keyed.try_acquire_with_quota_at("two", two, w + milliseconds(1)).allowed());
  EXPECT_EQ(keyed.peek_with_quota_at("two", two, w + milliseconds(2), 0).remaining(), 0u);
  EXPECT_TRUE(keyed.try_acquire_with_quota_at("two", two, w + seconds(1)).allowed());
}

}  // namespace
}  // namespace floodgate
