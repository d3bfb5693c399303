#include "floodgate/limiters/scalable_gcra.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "floodgate/limiters/gcra.h"

namespace floodgate {
namespace {

using std::chrono::seconds;

std::string describe(const Decision& d) {
  return std::string(to_string(d.verdict())) + " remaining " + std::to_string(d.remaining()) +
         " retry " + std::to_string(d.retry_after().count()) + " reset " +
         std::to_string(d.reset_after().count());
}

// One thread alone in its shard: every decision is `GcraLimiter`'s, field by field, on a trace
// with stale instants, jumps, costs from 0 to above the burst and the ends of the time range.
TEST(ScalableGcraTest, OneThreadDecidesExactlyAsGcraLimiter) {
  for (const Quota quota :
       {Quota::per_second(1), Quota::per_second(10), Quota::per_second(1000).with_burst(25),
        Quota::per_second(1'000'000'000), *Quota::parse("7/h burst 3")}) {
    for (const Nanos lease : {Nanos::zero(), Nanos{1}, Nanos{quota.interval().count() * 3}}) {
      ScalableGcraLimiter<ManualClock> ours{quota, {.shards = 4, .lease = lease}};
      GcraLimiter<ManualClock> exact{quota};
      std::mt19937_64 rng(quota.count() + static_cast<std::uint64_t>(lease.count()));
      std::int64_t t = 1'000'000'000;
      const auto step = static_cast<std::int64_t>(quota.interval().count());
      for (int i = 0; i < 20'000; ++i) {
        switch (rng() % 8) {
          case 0:
            t -= static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(3 * step));
            break;  // Stale.
          case 1:
            t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(50 * step));
            break;  // Idle.
          default:
            t += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(step + 1));
        }
        const std::uint64_t cost = rng() % 16 == 0 ? rng() % (quota.burst() + 2) : 1;
        const Instant now{Nanos{t}};
        const Decision a = ours.try_acquire_at(now, cost);
        const Decision b = exact.try_acquire_at(now, cost);
        ASSERT_EQ(describe(a), describe(b))
            << quota.to_string() << ", lease " << lease.count() << " ns, step " << i << ", cost "
            << cost << ", t " << t;
      }
      // Instants at the ends of the range are clamped as GcraLimiter clamps them.
      for (const std::int64_t end :
           {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()}) {
        const Instant now{Nanos{end}};
        EXPECT_EQ(describe(ours.try_acquire_at(now)), describe(exact.try_acquire_at(now)));
        EXPECT_EQ(describe(ours.peek_at(now, 2)), describe(exact.peek_at(now, 2)));
      }
    }
  }
}

TEST(ScalableGcraTest, CostsOfZeroAndAboveTheBurstConsumeNothing) {
  const Quota quota = Quota::per_second(10);
  ScalableGcraLimiter<ManualClock> limiter{quota};
  const Instant t0{seconds(1)};
  EXPECT_EQ(limiter.try_acquire_at(t0, 11).verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(limiter.try_acquire_at(t0, std::numeric_limits<std::uint64_t>::max()).verdict(),
            Verdict::ExceedsBurst);
  EXPECT_TRUE(limiter.try_acquire_at(t0, 0).allowed());
  EXPECT_TRUE(limiter.try_acquire_at(t0, 10).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(t0, 1).allowed());
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 0u);
}

TEST(ScalableGcraTest, ShardsLeasesAndTheStrandedBoundFollowTheOptions) {
  const Quota quota = Quota::per_second(1000);  // Interval 1 ms, burst 1000.
  ScalableGcraLimiter<ManualClock> chosen{quota,
                                          {.shards = 5, .lease = std::chrono::milliseconds(10)}};
  EXPECT_EQ(chosen.shards(), 5u);
  EXPECT_EQ(chosen.lease(), std::chrono::milliseconds(10));
  EXPECT_EQ(chosen.max_stranded(), 5u * 11u);  // 5 shards x (10 intervals + 1).
  ScalableGcraLimiter<ManualClock> defaults{quota, {.shards = 4}};
  EXPECT_EQ(defaults.lease(), Nanos{62'500'000});  // The window (1 s) / (4 x 4 shards).
  // A lease is at least one interval and at most the window.
  ScalableGcraLimiter<ManualClock> tiny{quota, {.shards = 1, .lease = Nanos{1}}};
  EXPECT_EQ(tiny.lease(), std::chrono::milliseconds(1));
  EXPECT_EQ(tiny.max_stranded(), 2u);  // 1 shard x (1 interval + 1).
  ScalableGcraLimiter<ManualClock> huge{quota, {.shards = 1, .lease = seconds(100)}};
  EXPECT_EQ(huge.lease(), seconds(1));
  ScalableGcraLimiter<ManualClock> many{quota, {.shards = 1000}};
  EXPECT_EQ(many.shards(), 64u);
}

}  // namespace
}  // namespace floodgate
