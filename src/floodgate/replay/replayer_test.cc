// Replayer: for a trace in time order, every algorithm decides each request exactly as its own
// limiter per key would, kept forever, with per-key quotas; bad quotas for the window
// algorithms are errors.
#include "floodgate/replay/replayer.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "floodgate/floodgate.h"

namespace floodgate::replay {
namespace {

template <typename L>
class PerKey {
 public:
  explicit PerKey(const KeyQuotas& rules, const Quota& fallback)
      : rules_(rules), fallback_(fallback) {}
  Decision decide(const Request& r) {
    auto it = limiters_.find(std::string(r.key));
    if (it == limiters_.end()) {
      it = limiters_
               .emplace(std::string(r.key),
                        std::make_unique<L>(rules_.match(r.key).value_or(fallback_)))
               .first;
    }
    return it->second->try_acquire_at(r.time, r.cost);
  }

 private:
  const KeyQuotas& rules_;
  Quota fallback_;
  std::map<std::string, std::unique_ptr<L>> limiters_;
};

template <typename L>
void expect_same_as_limiters_kept_forever(Algorithm algorithm, const Quota& quota,
                                          const char* rules_text) {
  SCOPED_TRACE(std::string(to_string(algorithm)));
  const KeyQuotas rules = *KeyQuotas::parse(rules_text, "rules");
  Result<Replayer> replayer = Replayer::create(
      {.algorithm = algorithm, .quota = quota, .key_quotas = rules, .max_keys = 1000});
  ASSERT_TRUE(replayer) << replayer.error().message();
  PerKey<L> reference(rules, quota);
  std::mt19937_64 rng(7);
  std::int64_t t = 1'000'000'000'000;
  std::uint64_t admitted = 0;
  for (int i = 0; i < 300'000; ++i) {
    // 3000 keys, about 200 requests a second, a few hot keys.
    t += static_cast<std::int64_t>(rng() % 10'000'000);
    const int k = rng() % 4 == 0 ? static_cast<int>(rng() % 5) : static_cast<int>(rng() % 3000);
    const std::string key = (k % 7 == 0 ? "vip:" : "user:") + std::to_string(k);
    const Request request{Instant{Nanos{t}}, key,
                          rng() % 20 == 0 ? std::uint64_t{3} : std::uint64_t{1}};
    const Decision got = replayer->decide(request);
    ASSERT_EQ(got, reference.decide(request)) << "request " << i << " key " << key;
    admitted += got.allowed() ? 1u : 0u;
  }
  EXPECT_GT(admitted, 1000u);
  EXPECT_LT(admitted, 300'000u);
  // Keys dropped along the way, without loss: at most max_keys of the 3000 seen.
  EXPECT_LE(replayer->stats().keys_now, 1000u);
  EXPECT_EQ(replayer->stats().overflow_decisions, 0u);
  EXPECT_EQ(replayer->quota_of("vip:7"), rules.match("vip:7"));
}

TEST(ReplayerTest, EveryAlgorithmDecidesAsItsLimitersKeptForever) {
  const char* rules = "vip:* 50/s burst 20\n";
  const char* window_rules = "vip:* 50/s\n";
  expect_same_as_limiters_kept_forever<GcraLimiter<ManualClock>>(
      Algorithm::Gcra, Quota::per_second(2).with_burst(4), rules);
  expect_same_as_limiters_kept_forever<TokenBucketLimiter<ManualClock>>(
      Algorithm::TokenBucket, Quota::per_second(2).with_burst(4), rules);
  expect_same_as_limiters_kept_forever<FixedWindowLimiter<ManualClock>>(
      Algorithm::FixedWindow, Quota::per_second(2), window_rules);
  expect_same_as_limiters_kept_forever<SlidingWindowLogLimiter<ManualClock>>(
      Algorithm::SlidingLog, Quota::per_second(2), window_rules);
  expect_same_as_limiters_kept_forever<SlidingWindowCounterLimiter<ManualClock>>(
      Algorithm::SlidingCounter, Quota::per_second(2), window_rules);
}

TEST(ReplayerTest, EveryAlgorithmKeepsItsKeysWithinMaxKeys) {
  for (const Algorithm algorithm : kAlgorithms) {
    SCOPED_TRACE(std::string(to_string(algorithm)));
    Result<Replayer> replayer =
        Replayer::create({.algorithm = algorithm, .quota = Quota::per_second(5), .max_keys = 1000});
    ASSERT_TRUE(replayer) << replayer.error().message();
    // 300,000 distinct keys, a microsecond apart: every key still limited when the next arrives.
    std::uint64_t too_many = 0;
    for (int i = 0; i < 300'000; ++i) {
      const std::string key = "k" + std::to_string(i);  // Outlives the request's view of it.
      const Request request{Instant{Nanos{1'000'000'000'000 + i * 1000}}, key, 3};
      const Decision d = replayer->decide(request);
      too_many += d.verdict() == Verdict::TooManyKeys ? 1u : 0u;
      ASSERT_LE(replayer->stats().keys_now, 1000u) << "request " << i;
    }
    EXPECT_EQ(replayer->stats().keys_now, 1000u);
    EXPECT_EQ(too_many, 299'000u) << "a full limiter holds new keys off; it resets nobody";
    EXPECT_EQ(replayer->stats().overflow_decisions, 299'000u);
  }
}

TEST(ReplayerTest, WindowAlgorithmsRejectABurstOfTheirOwn) {
  Result<Replayer> r = Replayer::create(
      {.algorithm = Algorithm::FixedWindow, .quota = Quota::per_second(100).with_burst(20)});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("fixed-window"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("burst 20 for 100"), std::string::npos) << r.error().message();
  r = Replayer::create({.algorithm = Algorithm::SlidingLog,
                        .quota = Quota::per_second(5),
                        .key_quotas = *KeyQuotas::parse("a* 9/s burst 1\n", "q")});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("pattern \"a*\""), std::string::npos) << r.error().message();
  EXPECT_FALSE(Replayer::create({.max_keys = 0}));
  r = Replayer::create(
      {.algorithm = Algorithm::EnvoyFixedWindow, .quota = Quota::per_second(100).with_burst(20)});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("envoy-fixed-window"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace floodgate::replay
