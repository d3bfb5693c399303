#include "floodgate/limiters/sliding_window.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

#include "floodgate/testing/reference_models.h"
#include "floodgate/testkit/limiter_checks.h"

namespace floodgate {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testkit::LimiterCall;

const Instant t0{hours(24 * 1000)};

using reference::Log;

TEST(SlidingWindowLogLimiterTest, DecidesAsTheNaiveLog) {
  const Quota quotas[] = {Quota::per_second(5), Quota::per(milliseconds(7), 3),
                          Quota::per_minute(100), Quota::per(Nanos{10}, 2)};
  std::mt19937_64 rng(31);
  for (const Quota& quota : quotas) {
    SCOPED_TRACE(quota.to_string());
    SlidingWindowLogLimiter<ManualClock> limiter{quota};
    Log model(quota.period().count(), quota.count());
    std::int64_t t = t0.time_since_epoch().count();
    for (int i = 0; i < 5'000; ++i) {
      t += static_cast<std::int64_t>(rng() %
                                     static_cast<std::uint64_t>(quota.period().count() / 3 + 1));
      const std::uint64_t cost = rng() % (quota.count() + 2);
      const Decision want = model.acquire(t, cost);
      const Decision got = limiter.try_acquire_at(Instant{Nanos{t}}, cost);
      ASSERT_EQ(got, want) << "step " << i << ": " << to_string(got) << " vs " << to_string(want);
    }
  }
}

TEST(SlidingWindowLogLimiterTest, NoWindowEverHoldsMoreThanTheLimitEvenWithStaleCalls) {
  const Quota quota = Quota::per(milliseconds(100), 10);
  SlidingWindowLogLimiter<ManualClock> limiter{quota};
  std::mt19937_64 rng(8);
  std::vector<testkit::Operation<LimiterCall>> history;
  std::int64_t now = t0.time_since_epoch().count();
  for (int i = 0; i < 20'000; ++i) {
    now += static_cast<std::int64_t>(rng() % 20'000'000);
    const Instant at{Nanos{now - static_cast<std::int64_t>(rng() % 150'000'000)}};
    const std::uint64_t cost = 1 + rng() % 3;
    history.push_back(
        {0, i, "", 0, 0, {}, {}, LimiterCall{at, cost, limiter.try_acquire_at(at, cost)}, {}});
  }
  EXPECT_GT(testkit::admitted_cost(history), 5'000u);
  const auto violation = testkit::check_sliding_window_bound(history, 10, quota.period());
  EXPECT_FALSE(violation.has_value()) << violation->describe();
}

TEST(SlidingWindowLogLimiterTest, ReportsWhenTheOldestAdmissionsExpire) {
  SlidingWindowLogLimiter<ManualClock> limiter{Quota::per_second(3)};
  EXPECT_TRUE(limiter.try_acquire_at(t0).allowed());
  EXPECT_TRUE(limiter.try_acquire_at(t0 + milliseconds(200), 2).allowed());
  const Decision d = limiter.try_acquire_at(t0 + milliseconds(500), 2);
  EXPECT_EQ(d.verdict(), Verdict::Denied);
  EXPECT_EQ(d.retry_after(), milliseconds(700));  // Both from t0 + 200 ms must go.
  EXPECT_EQ(d.reset_after(), milliseconds(700));
  EXPECT_EQ(limiter.try_acquire_at(t0 + milliseconds(500)).retry_after(), milliseconds(500));
  EXPECT_TRUE(limiter.try_acquire_at(t0 + seconds(1)).allowed());
  // Too stale for the log: denied, told when the newest window would take it.
  const Decision stale = limiter.try_acquire_at(t0 - seconds(1));
  EXPECT_EQ(stale.verdict(), Verdict::Denied);
}

using reference::Counter;

TEST(SlidingWindowCounterLimiterTest, DecidesAsTheSequentialModel) {
  const Quota quotas[] = {Quota::per_second(5), Quota::per(milliseconds(7), 3),
                          Quota::per_minute(100), Quota::per(Nanos{10}, 2)};
  std::mt19937_64 rng(41);
  for (const Quota& quota : quotas) {
    SCOPED_TRACE(quota.to_string());
    SlidingWindowCounterLimiter<ManualClock> limiter{quota};
    Counter model(quota.period().count(), quota.count());
    std::int64_t t = t0.time_since_epoch().count();
    for (int i = 0; i < 20'000; ++i) {
      t += static_cast<std::int64_t>(rng() %
                                     static_cast<std::uint64_t>(quota.period().count() / 3 + 1));
      const std::uint64_t cost = rng() % (quota.count() + 2);
      const auto [verdict, remaining] = model.acquire(t, cost);
      const Decision got = limiter.try_acquire_at(Instant{Nanos{t}}, cost);
      ASSERT_EQ(got.verdict(), verdict) << "step " << i;
      ASSERT_EQ(got.remaining(), remaining) << "step " << i;
      if (got.verdict() == Verdict::Denied) {
        // The wait it reports is enough, and not more than needed: a peek then admits, a peek
        // one nanosecond earlier does not.
        const Instant retry = Instant{Nanos{t}} + got.retry_after();
        EXPECT_TRUE(limiter.peek_at(retry, cost).allowed()) << "step " << i;
        EXPECT_FALSE(limiter.peek_at(retry - Nanos{1}, cost).allowed()) << "step " << i;
      }
    }
  }
}

TEST(SlidingWindowCounterLimiterTest, WeighsThePreviousWindowByItsOverlap) {
  SlidingWindowCounterLimiter<ManualClock> limiter{Quota::per_second(10)};
  EXPECT_TRUE(limiter.try_acquire_at(t0 + milliseconds(900), 10).allowed());
  // 250 ms into the next window, the previous 10 weigh ceil(10 x 0.75) = 8: room for 2.
  EXPECT_EQ(limiter.peek_at(t0 + milliseconds(1250), 0).remaining(), 2u);
  EXPECT_TRUE(limiter.try_acquire_at(t0 + milliseconds(1250), 2).allowed());
  const Decision d = limiter.try_acquire_at(t0 + milliseconds(1250));
  EXPECT_EQ(d.verdict(), Verdict::Denied);
  // Room for one more when the weight falls to 7: at 300 ms into the window.
  EXPECT_EQ(d.retry_after(), milliseconds(50));
  EXPECT_TRUE(limiter.try_acquire_at(t0 + milliseconds(1300)).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(t0 + milliseconds(1300)).allowed());
}

TEST(SlidingWindowCounterLimiterTest, OverAdmitsLessThanTwiceTheLimitInTheWorstCase) {
  // Adversarial: the previous window's admissions all at its very end, then as many as the
  // estimate allows: a sliding window straddling the boundary gets close to, never at, 2 x limit.
  const Quota quota = Quota::per_second(100);
  SlidingWindowCounterLimiter<ManualClock> limiter{quota};
  std::vector<testkit::Operation<LimiterCall>> history;
  auto call = [&](Instant at) {
    history.push_back(
        {0, 0, "", 0, 0, {}, {}, LimiterCall{at, 1, limiter.try_acquire_at(at, 1)}, {}});
  };
  for (int i = 0; i < 100; ++i) call(t0 + seconds(1) - Nanos{1});
  for (std::int64_t ms = 0; ms < 1000; ++ms) {
    for (int k = 0; k < 5; ++k) call(t0 + seconds(1) + milliseconds(ms));
  }
  const auto at_limit = testkit::check_sliding_window_bound(history, 100, quota.period());
  ASSERT_TRUE(at_limit.has_value());
  std::printf("worst case: %llu admitted in one sliding second against a limit of 100\n",
              static_cast<unsigned long long>(at_limit->admitted));
  EXPECT_GT(at_limit->admitted, 190u);
  EXPECT_FALSE(testkit::check_sliding_window_bound(history, 199, quota.period()).has_value());
  EXPECT_FALSE(testkit::check_aligned_window_bound(history, quota).has_value());
}

TEST(SlidingWindowCounterLimiterTest, EvenTrafficStaysCloseToTheLimit) {
  const Quota quota = Quota::per_second(100);
  SlidingWindowCounterLimiter<ManualClock> limiter{quota};
  std::vector<testkit::Operation<LimiterCall>> history;
  std::mt19937_64 rng(12);
  for (std::int64_t us = 0; us < 10'000'000; us += static_cast<std::int64_t>(rng() % 4000)) {
    const Instant at = t0 + std::chrono::microseconds(us);
    history.push_back(
        {0, 0, "", 0, 0, {}, {}, LimiterCall{at, 1, limiter.try_acquire_at(at, 1)}, {}});
  }
  const auto over = testkit::check_sliding_window_bound(history, 100, quota.period());
  const std::uint64_t worst = over ? over->admitted : 100;
  std::printf("even traffic at ~5x the limit: worst sliding second admitted %llu of 100\n",
              static_cast<unsigned long long>(worst));
  EXPECT_FALSE(testkit::check_sliding_window_bound(history, 110, quota.period()).has_value());
}

}  // namespace
}  // namespace floodgate
