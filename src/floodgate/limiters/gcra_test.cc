#include "floodgate/limiters/gcra.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/internal/time_math.h"

namespace floodgate {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The step tables name their instants as Go's rate_test.go does: t0, t0 + 100ms, ...
const Instant t0{seconds(1000)};  // NOLINT(readability-identifier-naming)

// One row of a step table: at `at`, ask for `cost`, expect this answer.
struct Step {
  Instant at;
  std::uint64_t cost;
  Verdict verdict;
  std::uint64_t remaining;
  Nanos retry_after;
  Nanos reset_after;
};

void run_steps(GcraLimiter<ManualClock>& limiter, const std::vector<Step>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    SCOPED_TRACE(testing::Message() << "step " << i << ": cost " << s.cost << " at t0+"
                                    << (s.at - t0).count() << "ns");
    const Decision d = limiter.try_acquire_at(s.at, s.cost);
    EXPECT_EQ(d.verdict(), s.verdict);
    EXPECT_EQ(d.remaining(), s.remaining);
    EXPECT_EQ(d.retry_after(), s.retry_after);
    EXPECT_EQ(d.reset_after(), s.reset_after);
    EXPECT_EQ(d.limit(), limiter.quota().burst());
  }
}

constexpr Verdict kAllowed = Verdict::Allowed;
constexpr Verdict kDenied = Verdict::Denied;
constexpr Nanos kZero = Nanos::zero();

TEST(GcraLimiterTest, DeniesOnceBurstIsSpent) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10).with_burst(3)};  // interval 100 ms
  run_steps(limiter,
            {
                {t0, 1, kAllowed, 2, kZero, milliseconds(100)},
                {t0, 1, kAllowed, 1, kZero, milliseconds(200)},
                {t0, 1, kAllowed, 0, kZero, milliseconds(300)},
                {t0, 1, kDenied, 0, milliseconds(100), milliseconds(300)},
                {t0 + milliseconds(99), 1, kDenied, 0, milliseconds(1), milliseconds(201)},
                {t0 + milliseconds(100), 1, kAllowed, 0, kZero, milliseconds(300)},
                {t0 + milliseconds(100), 1, kDenied, 0, milliseconds(100), milliseconds(300)},
            });
}

TEST(GcraLimiterTest, RefillsOnePermitPerIntervalUpToTheBurst) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10).with_burst(2)};
  run_steps(limiter,
            {
                {t0, 2, kAllowed, 0, kZero, milliseconds(200)},
                {t0 + milliseconds(100), 2, kDenied, 1, milliseconds(100), milliseconds(100)},
                {t0 + milliseconds(100), 1, kAllowed, 0, kZero, milliseconds(200)},
                // Idle for an hour: full again, and never fuller than the burst.
                {t0 + hours(1), 1, kAllowed, 1, kZero, milliseconds(100)},
                {t0 + hours(1), 1, kAllowed, 0, kZero, milliseconds(200)},
                {t0 + hours(1), 1, kDenied, 0, milliseconds(100), milliseconds(200)},
            });
}

TEST(GcraLimiterTest, PacesCallsWhenBurstIsOne) {
  // Go's rate_test.go "TestLimiterBurst1" shape: one event per interval, never two closer.
  GcraLimiter<ManualClock> limiter{Quota::per_second(10).with_burst(1)};
  run_steps(limiter,
            {
                {t0, 1, kAllowed, 0, kZero, milliseconds(100)},
                {t0 + milliseconds(50), 1, kDenied, 0, milliseconds(50), milliseconds(50)},
                {t0 + milliseconds(100), 1, kAllowed, 0, kZero, milliseconds(100)},
                {t0 + milliseconds(250), 1, kAllowed, 0, kZero, milliseconds(100)},
                {t0 + milliseconds(300), 1, kDenied, 0, milliseconds(50), milliseconds(50)},
            });
}

TEST(GcraLimiterTest, CostAboveBurstExceedsBurstAndNeverWaits) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
  const Decision d = limiter.try_acquire_at(t0, 11);
  EXPECT_EQ(d.verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(d.retry_after(), kNever);
  EXPECT_EQ(d.remaining(), 10u);  // Nothing was consumed.
  EXPECT_EQ(d.reset_after(), kZero);
  EXPECT_TRUE(limiter.try_acquire_at(t0, 10).allowed());
}

TEST(GcraLimiterTest, HostileCostsAreAnsweredWithoutOverflow) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(1'000'000'000).with_burst(1'000'000'000)};
  EXPECT_EQ(limiter.try_acquire_at(t0, 4'294'967'295u).verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(limiter.try_acquire_at(t0, std::numeric_limits<std::uint64_t>::max()).verdict(),
            Verdict::ExceedsBurst);
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 1'000'000'000u);
}

TEST(GcraLimiterTest, CostZeroConsumesNothing) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(2)};
  run_steps(limiter, {
                         {t0, 0, kAllowed, 2, kZero, kZero},
                         {t0, 2, kAllowed, 0, kZero, seconds(1)},
                         {t0, 0, kAllowed, 0, kZero, seconds(1)},
                         {t0, 1, kDenied, 0, milliseconds(500), seconds(1)},
                     });
}

TEST(GcraLimiterTest, PeekAnswersWithoutConsuming) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10).with_burst(1)};
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 1u);  // Cost 0: what is available now.
  EXPECT_EQ(limiter.peek_at(t0).remaining(), 0u);     // Cost 1: what would remain after it.
  EXPECT_TRUE(limiter.peek_at(t0).allowed());
  EXPECT_TRUE(limiter.peek_at(t0).allowed());
  EXPECT_TRUE(limiter.try_acquire_at(t0).allowed());
  const Decision d = limiter.peek_at(t0);
  EXPECT_EQ(d.verdict(), kDenied);
  EXPECT_EQ(d.retry_after(), milliseconds(100));
  EXPECT_EQ(limiter.peek_at(t0, 2).verdict(), Verdict::ExceedsBurst);
}

TEST(GcraLimiterTest, TryAcquireUpToGrantsWhatIsAvailable) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
  Grant g = limiter.try_acquire_up_to_at(t0, 4);
  EXPECT_EQ(g.permits, 4u);
  EXPECT_EQ(g.decision.remaining(), 6u);
  g = limiter.try_acquire_up_to_at(t0, 100);
  EXPECT_EQ(g.permits, 6u);
  EXPECT_TRUE(g.decision.allowed());
  EXPECT_EQ(g.decision.remaining(), 0u);
  g = limiter.try_acquire_up_to_at(t0 + milliseconds(150), 100);
  EXPECT_EQ(g.permits, 1u);
  g = limiter.try_acquire_up_to_at(t0 + milliseconds(150), 100);
  EXPECT_EQ(g.permits, 0u);
  EXPECT_EQ(g.decision.verdict(), kDenied);
  EXPECT_EQ(g.decision.retry_after(), milliseconds(50));
  g = limiter.try_acquire_up_to_at(t0 + milliseconds(150), 0);
  EXPECT_EQ(g.permits, 0u);
  EXPECT_TRUE(g.decision.allowed());
}

TEST(GcraLimiterTest, StaleTimeNeverAdmitsMore) {
  // The golang/go#71360 shape: a caller that read the clock long ago arrives after others have
  // drained the bucket. With a state that only moves forwards it finds no fresh tokens.
  GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.try_acquire_at(t0 + seconds(5)).allowed());
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(limiter.try_acquire_at(t0 + seconds(5) - milliseconds(i * 37)).allowed());
  }
  // A caller five seconds stale waits for the five seconds plus the refill.
  EXPECT_EQ(limiter.peek_at(t0).retry_after(), seconds(5) + milliseconds(100));
}

TEST(GcraLimiterTest, ClockJumpingBackwardsDoesNotRefill) {
  ManualClock clock(t0);
  GcraLimiter limiter{Quota::per_second(1), clock};
  EXPECT_TRUE(limiter.try_acquire().allowed());
  clock.set(t0 - hours(1));
  EXPECT_FALSE(limiter.try_acquire().allowed());
  clock.set(t0 + seconds(1));
  EXPECT_TRUE(limiter.try_acquire().allowed());
}

TEST(GcraLimiterTest, TokensAreNegativeInDebt) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
  ASSERT_TRUE(limiter.reserve_at(t0, 10).allowed());
  ASSERT_TRUE(limiter.reserve_at(t0, 5).allowed());
  EXPECT_DOUBLE_EQ(limiter.tokens_at(t0), -5.0);
  EXPECT_DOUBLE_EQ(limiter.tokens_at(t0 + milliseconds(200)), -3.0);
  EXPECT_DOUBLE_EQ(limiter.tokens_at(t0 + seconds(2)), 10.0);
}

TEST(GcraLimiterTest, ExtremeInstantsAreClampedNotOverflowed) {
  GcraLimiter<ManualClock> limiter{Quota::per_second(1'000'000'000).with_burst(5)};
  // At the latest representable instant the limiter still counts: five, then no more.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.try_acquire_at(Instant::max()).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(Instant::max()).allowed());
  // A caller at the earliest instant is far behind that state: denied, with the longest finite
  // wait (the true one, 2^63 - 1 ns, would read as `kNever`).
  const Decision d = limiter.try_acquire_at(Instant::min());
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.retry_after(), internal::kLongestWait);
  EXPECT_EQ(d.remaining(), 0u);

  GcraLimiter<ManualClock> fresh{Quota::per_second(1)};
  EXPECT_TRUE(fresh.try_acquire_at(Instant::min()).allowed());
  EXPECT_FALSE(fresh.try_acquire_at(Instant::min()).allowed());
  EXPECT_TRUE(fresh.try_acquire_at(Instant{}).allowed());
}

TEST(GcraLimiterTest, IdleForYearsRefillsToTheBurstAndNoMore) {
  GcraLimiter<ManualClock> limiter{Quota::per_hour(3)};
  EXPECT_TRUE(limiter.try_acquire_at(t0, 3).allowed());
  const Instant later = t0 + hours(24 * 365 * 100);
  EXPECT_EQ(limiter.peek_at(later, 0).remaining(), 3u);
  EXPECT_TRUE(limiter.try_acquire_at(later, 3).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(later).allowed());
}

TEST(GcraLimiterTest, ReadsItsClockInTheFormsWithoutAt) {
  ManualClock clock(t0);
  GcraLimiter limiter{Quota::per_second(2), clock};
  EXPECT_TRUE(limiter.try_acquire(2).allowed());
  EXPECT_FALSE(limiter.peek().allowed());
  clock.advance(milliseconds(500));
  EXPECT_TRUE(limiter.peek().allowed());
  EXPECT_EQ(limiter.try_acquire_up_to(5).permits, 1u);
}

TEST(GcraLimiterTest, DefaultsToTheSteadyClock) {
  GcraLimiter limiter{Quota::per_hour(1)};
  static_assert(std::is_same_v<decltype(limiter), GcraLimiter<SteadyClock>>);
  EXPECT_TRUE(limiter.try_acquire().allowed());
  EXPECT_FALSE(limiter.try_acquire().allowed());
  GcraLimiter<CoarseClock> coarse{Quota::per_hour(1)};
  EXPECT_TRUE(coarse.try_acquire().allowed());
  EXPECT_FALSE(coarse.try_acquire().allowed());
}

// Replays one random workload and returns every decision.
template <Threads T>
std::vector<Decision> replay_workload(std::uint64_t seed) {
  GcraLimiter<ManualClock, T> limiter{Quota::per_second(100).with_burst(7)};
  std::mt19937_64 rng(seed);
  std::vector<Decision> out;
  Instant now = t0;
  for (int i = 0; i < 5000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 20'000'000)};
    const std::uint64_t cost = rng() % 9;
    if (i % 500 == 499) limiter.set_quota_at(Quota::per_second(50 + rng() % 100), now);
    out.push_back((i % 3 == 0) ? limiter.try_acquire_up_to_at(now, cost).decision
                               : limiter.try_acquire_at(now, cost));
  }
  return out;
}

TEST(GcraLimiterTest, TheSingleThreadTypeDecidesAsTheSharedOne) {
  EXPECT_EQ(replay_workload<Threads::One>(42), replay_workload<Threads::Many>(42));
  EXPECT_EQ(replay_workload<Threads::One>(7), replay_workload<Threads::Many>(7));
}

TEST(GcraLimiterTest, IsAlignedToACacheLine) {
  constexpr std::size_t kLine = internal::kCacheLineSize;
  static_assert(alignof(GcraLimiter<>) == kLine);
  static_assert(sizeof(GcraLimiter<>) % kLine == 0);
  const GcraLimiter<> limiter{Quota::per_second(1)};
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&limiter) % kLine, 0u);
}

}  // namespace
}  // namespace floodgate
