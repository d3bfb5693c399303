// Many threads against one `ScalableGcraLimiter`, on floodgate::testkit: workers only record; the
// test thread checks order-free invariants after the kit has joined them. The shard counts make
// threads share shards (the path that decides on the shared word when a shard is busy) as well
// as each have one; leases from one interval to far past the burst.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "floodgate/limiters/scalable_gcra.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"

namespace floodgate {
namespace {

using std::chrono::seconds;
using testkit::LimiterCall;
using testkit::Worker;

struct Shape {
  std::size_t shards;
  Nanos lease;
};

std::string name(const Shape& s) {
  return std::to_string(s.shards) + " shards, lease " + std::to_string(s.lease.count()) + " ns";
}

// 64 calls at one instant: never more than the burst; fewer only by what leases left unused.
TEST(ScalableGcraStressTest, CallsAtOneInstantAdmitTheBurstLessAtMostTheStranded) {
  const Quota quota = Quota::per_second(40);
  const Instant t0{seconds(1)};
  for (const Shape shape : {Shape{1, Nanos::zero()}, Shape{2, Nanos::zero()},
                            Shape{8, std::chrono::milliseconds(100)}, Shape{64, seconds(1)}}) {
    for (int round = 0; round < 20; ++round) {
      ScalableGcraLimiter<ManualClock> limiter{quota,
                                               {.shards = shape.shards, .lease = shape.lease}};
      const auto report = testkit::run<LimiterCall>(
          {.workers = 64, .seed = static_cast<std::uint64_t>(round), .name = "one instant"},
          [&](Worker<LimiterCall>& w) {
            for (int i = 0; i < 3 && w.keep_going(); ++i) testkit::acquire(w, limiter, t0);
          });
      ASSERT_TRUE(report.ok()) << report.describe();
      const std::uint64_t admitted = testkit::admitted_cost(report.history);
      ASSERT_LE(admitted, quota.burst()) << name(shape) << ", round " << round;
      ASSERT_GE(admitted + limiter.max_stranded(), quota.burst()) << name(shape);
    }
  }
}

// Callers that read a shared clock and arrive late (stale by up to 20 ms), in any order, with
// costs 1 to 4: in every window of their instants, at most burst + rate x window is admitted.
TEST(ScalableGcraStressTest, StaleAndOutOfOrderInstantsRespectTheRateBoundInEveryWindow) {
  const Quota quota = Quota::per_second(1000).with_burst(25);
  for (const Shape shape : {Shape{1, Nanos::zero()}, Shape{2, std::chrono::milliseconds(1)},
                            Shape{4, std::chrono::milliseconds(5)}, Shape{16, seconds(1)}}) {
    ScalableGcraLimiter<ManualClock> limiter{quota, {.shards = shape.shards, .lease = shape.lease}};
    std::atomic<std::int64_t> true_now{1'000'000'000};
    const auto report = testkit::run<LimiterCall>(
        {.workers = 6, .seed = 7, .name = "stale instants"}, [&](Worker<LimiterCall>& w) {
          for (int i = 0; i < 20'000 && w.keep_going(); ++i) {
            const std::int64_t now = true_now.fetch_add(
                static_cast<std::int64_t>(w.rng()() % 400'000), std::memory_order_relaxed);
            const Instant seen{Nanos{now - static_cast<std::int64_t>(w.rng()() % 20'000'000)}};
            testkit::acquire(w, limiter, seen, 1 + w.rng()() % 4);
          }
        });
    ASSERT_TRUE(report.ok()) << report.describe();
    const auto admitted =
        report.count([](const auto& op) { return op.result->decision.allowed(); });
    // The workload exercised both answers.
    ASSERT_GT(admitted, 1000) << name(shape);
    ASSERT_LT(admitted, static_cast<std::int64_t>(report.history.size())) << name(shape);
    const auto violation = testkit::check_rate_bound(report.history, quota);
    EXPECT_FALSE(violation) << name(shape) << ": " << violation->describe();
  }
}

// Saturation: every thread calls as fast as it can at instants that advance together, far more
// often than the rate. Over the run, the admitted cost is at most the quota's bound and at least
// that bound less the stranded bound and one interval's rounding per window.
TEST(ScalableGcraStressTest, AtSaturationAdmitsTheQuotaLessAtMostTheStranded) {
  const Quota quota = Quota::per_second(10'000).with_burst(100);
  ScalableGcraLimiter<ManualClock> limiter{quota, {.shards = 4}};
  std::atomic<std::int64_t> true_now{1'000'000'000};
  constexpr std::int64_t kStep = 1'000;  // 1 us a call: 100 calls per interval of 100 us.
  const auto report = testkit::run<LimiterCall>(
      {.workers = 4, .seed = 3, .name = "saturation"}, [&](Worker<LimiterCall>& w) {
        for (int i = 0; i < 50'000 && w.keep_going(); ++i) {
          const std::int64_t now = true_now.fetch_add(kStep, std::memory_order_relaxed);
          testkit::acquire(w, limiter, Instant{Nanos{now}});
        }
      });
  ASSERT_TRUE(report.ok()) << report.describe();
  const std::int64_t span = true_now.load() - kStep - 1'000'000'000;
  const auto interval = quota.interval().count();
  const std::uint64_t bound = quota.burst() + static_cast<std::uint64_t>(span / interval);
  const std::uint64_t admitted = testkit::admitted_cost(report.history);
  EXPECT_LE(admitted, bound);
  EXPECT_GE(admitted + limiter.max_stranded() + 1, bound)
      << "admitted " << admitted << " of " << bound << ", stranded bound "
      << limiter.max_stranded();
  EXPECT_FALSE(testkit::check_rate_bound(report.history, quota));
}

}  // namespace
}  // namespace floodgate
