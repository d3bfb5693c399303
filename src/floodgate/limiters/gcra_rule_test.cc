#include "floodgate/limiters/internal/gcra_rule.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <vector>

#include "floodgate/testing/reference_models.h"
#include "floodgate/testkit/rate_bound.h"

namespace floodgate {
namespace {

using reference::Bucket;

TEST(GcraRuleTest, DecidesExactlyAsAnIdealTokenBucket) {
  std::mt19937_64 rng(20261127);
  const Quota quotas[] = {Quota::per_second(10).with_burst(3), Quota::per_second(3),
                          Quota::per(Nanos{1000}, 7).with_burst(50), Quota::per_minute(1),
                          Quota::per_second(1'000'000'000).with_burst(1)};
  for (const Quota& quota : quotas) {
    SCOPED_TRACE(quota.to_string());
    const internal::Gcra::Params params = internal::Gcra::params(quota);
    Bucket reference(params);
    std::int64_t state = internal::Gcra::kFull;
    std::int64_t t = 1'000'000;
    for (int i = 0; i < 20'000; ++i) {
      // Steps from zero to two intervals, costs from zero to one above the burst.
      t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * params.interval + 1));
      const std::uint64_t cost = rng() % (params.burst + 2);
      const internal::Gcra::Step step =
          internal::Gcra::acquire(state, Instant{Nanos{t}}, cost, params);
      const Decision want = reference.acquire(t, cost);
      ASSERT_EQ(step.decision.verdict(), want.verdict()) << "step " << i;
      ASSERT_EQ(step.decision.remaining(), want.remaining()) << "step " << i;
      ASSERT_EQ(step.decision.retry_after(), want.retry_after()) << "step " << i;
      ASSERT_EQ(step.decision.reset_after(), want.reset_after()) << "step " << i;
      state = step.state;
    }
  }
}

TEST(GcraRuleTest, OutOfOrderTimeNeverBreaksTheRateBound) {
  std::mt19937_64 rng(71360);
  const Quota quota = Quota::per_second(1000).with_burst(20);
  const internal::Gcra::Params params = internal::Gcra::params(quota);
  std::int64_t state = internal::Gcra::kFull;
  std::vector<testkit::Admission> admitted;
  std::int64_t now = 0;
  for (int i = 0; i < 200'000; ++i) {
    now += static_cast<std::int64_t>(rng() % 2'000'000);  // The true clock: up to 2 ms a step.
    // Callers arrive with a reading up to 50 ms stale.
    const std::int64_t seen = now - static_cast<std::int64_t>(rng() % 50'000'000);
    const std::uint64_t cost = 1 + rng() % 3;
    const internal::Gcra::Step step =
        internal::Gcra::acquire(state, Instant{Nanos{seen}}, cost, params);
    if (step.decision.allowed()) admitted.push_back({Instant{Nanos{seen}}, cost});
    state = step.state;
  }
  ASSERT_GT(admitted.size(), 1000u);
  const auto violation = testkit::find_rate_bound_violation(admitted, quota);
  EXPECT_FALSE(violation.has_value()) << violation->describe();
}

TEST(GcraRuleTest, NeverAdmitsMoreThanTheExactRateWhenTheIntervalIsRounded) {
  // 3 per second rounds the interval up to 333333334 ns: over a day the limiter admits fewer
  // than 3 x 86400 + burst, and at most one fewer than the rounded rate's count.
  const Quota quota = Quota::per_second(3);
  const internal::Gcra::Params params = internal::Gcra::params(quota);
  std::int64_t state = internal::Gcra::kFull;
  std::uint64_t admitted = 0;
  const std::int64_t day = 86'400LL * 1'000'000'000;
  for (std::int64_t t = 0; t <= day; t += 10'000'000) {
    const internal::Gcra::Step step = internal::Gcra::acquire(state, Instant{Nanos{t}}, 1, params);
    admitted += step.decision.allowed() ? 1u : 0u;
    state = step.state;
  }
  EXPECT_LE(admitted, 3u * 86'400 + 3);
  EXPECT_GE(admitted, static_cast<std::uint64_t>(day / params.interval) + 3 - 1);
}

TEST(GcraRuleTest, AnyStateIsAnsweredWithoutOverflow) {
  const internal::Gcra::Params params = internal::Gcra::params(Quota::per_second(10));
  const std::int64_t states[] = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                 std::numeric_limits<std::int64_t>::max()};
  const Instant instants[] = {Instant::min(), Instant{}, Instant::max()};
  for (const std::int64_t state : states) {
    for (const Instant now : instants) {
      for (const std::uint64_t cost : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10},
                                       std::numeric_limits<std::uint64_t>::max()}) {
        const internal::Gcra::Step step = internal::Gcra::acquire(state, now, cost, params);
        // Whatever the verdict, an admission never leaves the state more than a window ahead.
        if (step.decision.allowed() && cost > 0) {
          EXPECT_LE(step.state - internal::clamped_nanos(now), params.window);
        }
        EXPECT_GE(step.decision.retry_after(), Nanos::zero());
        EXPECT_GE(step.decision.reset_after(), Nanos::zero());
        EXPECT_LE(step.decision.remaining(), params.burst);
      }
    }
  }
  // A corrupt state at INT64_MAX is a limiter in debt forever, not one that admits everything.
  EXPECT_FALSE(
      internal::Gcra::acquire(std::numeric_limits<std::int64_t>::max(), Instant::max(), 1, params)
          .decision.allowed());
}

TEST(GcraRuleTest, ChangingQuotaCarriesUsedPermitsAsThePolicySays) {
  const Instant t{std::chrono::seconds(1000)};
  const internal::Gcra::Params ten = internal::Gcra::params(Quota::per_second(10));
  const internal::Gcra::Params twenty = internal::Gcra::params(Quota::per_second(20));
  const internal::Gcra::Params five = internal::Gcra::params(Quota::per_second(5));
  // 4 of 10 used.
  const std::int64_t state = internal::Gcra::acquire(internal::Gcra::kFull, t, 4, ten).state;
  const auto left = [&](std::int64_t s, const internal::Gcra::Params& p) {
    return internal::Gcra::acquire(s, t, 0, p).decision.remaining();
  };
  using enum OnQuotaChange;
  EXPECT_EQ(left(internal::Gcra::change_quota(state, t, ten, twenty, KeepRemaining), twenty), 6u);
  EXPECT_EQ(left(internal::Gcra::change_quota(state, t, ten, five, KeepRemaining), five), 5u);
  EXPECT_EQ(left(internal::Gcra::change_quota(state, t, ten, twenty, KeepProportion), twenty), 12u);
  EXPECT_EQ(left(internal::Gcra::change_quota(state, t, ten, five, StartFull), five), 5u);
  // The same quota changes nothing, under every policy; a full state stays as it was.
  for (const OnQuotaChange policy : {KeepRemaining, KeepProportion, StartFull}) {
    if (policy != StartFull) {
      EXPECT_EQ(internal::Gcra::change_quota(state, t, ten, ten, policy), state);
    }
    EXPECT_EQ(internal::Gcra::change_quota(internal::Gcra::kFull, t, ten, ten, policy),
              internal::Gcra::kFull);
  }
  // Debt (a reservation 1 s ahead at 10/s: 10 permits owed) is carried as permits owed.
  const std::int64_t debt = internal::Gcra::reserve(state, t, 10, kNever, ten).state;
  const std::int64_t carried = internal::Gcra::change_quota(debt, t, ten, twenty, KeepRemaining);
  EXPECT_EQ(
      internal::Gcra::reserve(carried, t, 1, kNever, twenty).at - t.time_since_epoch().count(),
      // Still 4 permits owed, now at 20/s: the next one is ready after 5 x 50 ms.
      250'000'000);
  EXPECT_EQ(internal::Gcra::reserve(internal::Gcra::change_quota(debt, t, ten, five, KeepRemaining),
                                    t, 1, kNever, five)
                    .at -
                t.time_since_epoch().count(),
            // 4 permits owed at 5/s beyond the burst, plus this one: 1 s.
            1'000'000'000);
}

}  // namespace
}  // namespace floodgate
