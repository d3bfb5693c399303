// floodgate stress fails on limiters that break their contract, and passes on floodgate's own.
#include "stress.h"

#include <gtest/gtest.h>

#include <thread>

#include "floodgate/floodgate.h"
#include "floodgate/testing/broken_limiters.h"

namespace floodgate::app {
namespace {

const StressOptions kOptions{.threads = 4, .ops = 3000, .seed = 1, .deadline_seconds = 60};

TEST(StressTest, PassesFloodgatesLimiters) {
  const Quota quota = Quota::per_second(1000).with_burst(50);
  GcraLimiter<ManualClock> gcra(quota);
  const StressOutcome outcome = stress(gcra, Algorithm::Gcra, quota, kOptions);
  EXPECT_TRUE(outcome.ok()) << outcome.describe();
  EXPECT_EQ(outcome.checks.size(), 2u);
  EXPECT_NE(outcome.describe().find("PASS"), std::string::npos);
}

TEST(StressTest, PassesTheScalableLimiterWithThreadsBeyondItsShards) {
  const Quota quota = Quota::per_second(1000).with_burst(50);
  for (const std::size_t shards : {1u, 2u, 64u}) {
    ScalableGcraLimiter<ManualClock> limiter(quota, {.shards = shards});
    StressOptions options = kOptions;
    options.threads = 8;
    const StressOutcome outcome = stress_scalable(limiter, quota, options);
    EXPECT_TRUE(outcome.ok()) << shards << " shards\n" << outcome.describe();
    EXPECT_EQ(outcome.checks.size(), 1u);
  }
}

// Adversarial report 2026-12, D8: with a long period the workers' instants once ran past the
// clamp range (and overflowed, under UBSan) and a correct GCRA was reported not linearizable.
TEST(StressTest, PassesWithPeriodsOfDaysToCenturies) {
  for (const char* text : {"1/7d", "1/365d", "1/20000d", "10/30d"}) {
    const Quota quota = Quota::parse(text).value();
    GcraLimiter<ManualClock> gcra(quota);
    StressOptions options = kOptions;
    options.threads = 8;
    const StressOutcome outcome = stress(gcra, Algorithm::Gcra, quota, options);
    EXPECT_TRUE(outcome.ok()) << text << "\n" << outcome.describe();
    // Every call stayed inside the range limiters decide in.
    for (const auto& op : outcome.report.history) {
      const std::int64_t at = op.result->at.time_since_epoch().count();
      ASSERT_LE(at, internal::kTimeLimit) << text;
    }
  }
}

// Runs `make_outcome(seed)` for a few seeds and returns the first that fails: the bugs below
// show whenever workers interleave, which a run of 4 x 3000 calls all but always does.
template <typename F>
std::optional<StressOutcome> first_failure(F make_outcome) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    StressOutcome outcome = make_outcome(seed);
    if (!outcome.ok()) return outcome;
  }
  return std::nullopt;
}

TEST(StressTest, CatchesAStaleTimeRefill) {
  const Quota quota = Quota::per_second(1000).with_burst(50);
  const auto failed = first_failure([&](std::uint64_t seed) {
    testkit::StaleRefillBucket bucket(quota);
    StressOptions options = kOptions;
    options.seed = seed;
    return stress(bucket, Algorithm::TokenBucket, quota, options);
  });
  ASSERT_TRUE(failed) << "x/time/rate's stale-time refill went unnoticed";
  EXPECT_NE(failed->describe().find("rate bound (burst + rate x window)"), std::string::npos);
  EXPECT_NE(failed->describe().find("VIOLATED: admitted"), std::string::npos) << failed->describe();
  EXPECT_NE(failed->describe().find("FAIL"), std::string::npos);
}

TEST(StressTest, CatchesALostUpdate) {
  const Quota quota = Quota::per_second(1000).with_burst(50);
  const auto failed = first_failure([&](std::uint64_t seed) {
    testkit::BrokenGcra broken(quota, testkit::Bug::CheckThenAct);
    broken.preempt = [] { std::this_thread::yield(); };
    StressOptions options = kOptions;
    options.seed = seed;
    return stress(broken, Algorithm::Gcra, quota, options);
  });
  ASSERT_TRUE(failed) << "a load-decide-store GCRA went unnoticed";
  EXPECT_NE(failed->describe().find("linearizable against the GCRA rule"), std::string::npos);
  EXPECT_NE(failed->describe().find("VIOLATED"), std::string::npos) << failed->describe();
}

}  // namespace
}  // namespace floodgate::app
