// The contract every rate limiter in floodgate keeps, as one typed suite: bursts at one instant,
// costs above the burst, refill after idle, stale and out-of-order time, hostile values, peeks
// that change nothing, and each algorithm's own bound under concurrency (checked with
// floodgate::testkit after the workers are joined).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/limiters/fixed_window.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/sliding_window.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testing/reference_models.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"
#include "floodgate/testkit/linearizability.h"

namespace floodgate {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testkit::LimiterCall;

// A window boundary for every period used here, so that fixed windows start fresh at t0.
const Instant t0{hours(24 * 1000)};

// What differs between limiters: the bound their admissions obey. By default, the rate bound of
// a token bucket (GcraLimiter, TokenBucketLimiter).
template <typename L>
struct Contract {
  static std::optional<testkit::RateBoundViolation> bound(
      const std::vector<testkit::Operation<LimiterCall>>& history, const Quota& quota) {
    return testkit::check_rate_bound(history, quota);
  }
  static auto model(const Quota& quota) {
    return reference::ReplayModel<reference::Bucket>{
        reference::Bucket(internal::Gcra::params(quota))};
  }
};

template <>
struct Contract<TokenBucketLimiter<ManualClock>> : Contract<GcraLimiter<ManualClock>> {
  // The same bound, up to floating-point rounding: a double of nanoseconds near 10^14 (the
  // instants here) resolves 1/64 ns, and each admission may round in the bucket's favour, so
  // after a thousand admissions in a window the count can pass the real-valued bound by about
  // 1e-5 permits (once seen: 958 admitted where the bound was 957.99999776).
  static std::optional<testkit::RateBoundViolation> bound(
      const std::vector<testkit::Operation<LimiterCall>>& history, const Quota& quota) {
    return testkit::check_rate_bound(history, quota, 1e-3);
  }
  // The same rule as GCRA's; the waits are computed in floating point, so compare verdicts.
  static auto model(const Quota& quota) {
    using Model = reference::Verdicts<reference::Bucket>;
    return reference::ReplayModel<Model>{Model(reference::Bucket(internal::Gcra::params(quota)))};
  }
};

template <>
struct Contract<FixedWindowLimiter<ManualClock>> {
  static std::optional<testkit::RateBoundViolation> bound(
      const std::vector<testkit::Operation<LimiterCall>>& history, const Quota& quota) {
    return testkit::check_aligned_window_bound(history, quota);
  }
  static auto model(const Quota& quota) {
    return reference::ReplayModel<reference::Window>{
        reference::Window(quota.period().count(), quota.count())};
  }
};

template <>
struct Contract<SlidingWindowLogLimiter<ManualClock>> {
  static std::optional<testkit::RateBoundViolation> bound(
      const std::vector<testkit::Operation<LimiterCall>>& history, const Quota& quota) {
    return testkit::check_sliding_window_bound(history, quota.count(), quota.period());
  }
  static auto model(const Quota& quota) {
    return reference::ReplayModel<reference::Log>{
        reference::Log(quota.period().count(), quota.count())};
  }
};

template <>
struct Contract<SlidingWindowCounterLimiter<ManualClock>> {
  // Per aligned window the limit, and over any sliding window less than twice it.
  static std::optional<testkit::RateBoundViolation> bound(
      const std::vector<testkit::Operation<LimiterCall>>& history, const Quota& quota) {
    if (auto v = testkit::check_aligned_window_bound(history, quota)) return v;
    return testkit::check_sliding_window_bound(history, 2 * quota.count() - 1, quota.period());
  }
  static auto model(const Quota& quota) {
    return reference::ReplayModel<reference::Counter>{
        reference::Counter(quota.period().count(), quota.count())};
  }
};

template <typename L>
class LimiterContractTest : public ::testing::Test {};

using Limiters =
    ::testing::Types<GcraLimiter<ManualClock>, TokenBucketLimiter<ManualClock>,
                     FixedWindowLimiter<ManualClock>, SlidingWindowLogLimiter<ManualClock>,
                     SlidingWindowCounterLimiter<ManualClock>>;
TYPED_TEST_SUITE(LimiterContractTest, Limiters);

TYPED_TEST(LimiterContractTest, AdmitsTheBurstAtOneInstantAndNoMore) {
  for (const std::uint64_t burst : {1u, 2u, 10u, 1000u}) {
    TypeParam limiter{Quota::per_second(burst)};
    for (std::uint64_t i = 0; i < burst; ++i) {
      ASSERT_TRUE(limiter.try_acquire_at(t0).allowed()) << "call " << i << " of " << burst;
    }
    const Decision d = limiter.try_acquire_at(t0);
    EXPECT_EQ(d.verdict(), Verdict::Denied);
    EXPECT_GT(d.retry_after(), Nanos::zero());
    EXPECT_EQ(d.remaining(), 0u);
    EXPECT_EQ(d.limit(), burst);
  }
}

TYPED_TEST(LimiterContractTest, ACostAboveTheBurstIsNeverAdmittedAndConsumesNothing) {
  TypeParam limiter{Quota::per_second(5)};
  for (const std::uint64_t cost : {std::uint64_t{6}, std::uint64_t{4'294'967'295u},
                                   std::numeric_limits<std::uint64_t>::max()}) {
    const Decision d = limiter.try_acquire_at(t0, cost);
    EXPECT_EQ(d.verdict(), Verdict::ExceedsBurst);
    EXPECT_EQ(d.retry_after(), kNever);
  }
  EXPECT_TRUE(limiter.try_acquire_at(t0, 5).allowed());
}

TYPED_TEST(LimiterContractTest, RefillsToTheBurstAfterIdleAndNoFurther) {
  TypeParam limiter{Quota::per_second(4)};
  EXPECT_TRUE(limiter.try_acquire_at(t0, 4).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(t0).allowed());
  const Instant later = t0 + hours(24 * 365 * 10);
  EXPECT_EQ(limiter.peek_at(later, 0).remaining(), 4u);
  EXPECT_TRUE(limiter.try_acquire_at(later, 4).allowed());
  EXPECT_FALSE(limiter.try_acquire_at(later).allowed());
}

TYPED_TEST(LimiterContractTest, CostZeroConsumesNothing) {
  TypeParam limiter{Quota::per_second(3)};
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.try_acquire_at(t0, 0).allowed());
  EXPECT_TRUE(limiter.try_acquire_at(t0, 3).allowed());
}

TYPED_TEST(LimiterContractTest, PeekNeverChangesState) {
  const Quota quota = Quota::per(milliseconds(100), 3);
  TypeParam peeked{quota};
  TypeParam plain{quota};
  std::mt19937_64 rng(5);
  Instant now = t0;
  for (int i = 0; i < 5000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 40'000'000)};
    const std::uint64_t cost = rng() % 5;
    for (int k = 0; k < 3; ++k)
      (void)peeked.peek_at(now + Nanos{static_cast<std::int64_t>(rng() % 1'000'000)}, rng() % 5);
    const Decision want = plain.try_acquire_at(now, cost);
    const Decision peek = peeked.peek_at(now, cost);
    const Decision got = peeked.try_acquire_at(now, cost);
    ASSERT_EQ(got, want) << "step " << i;
    ASSERT_EQ(peek, want) << "step " << i;
  }
}

TYPED_TEST(LimiterContractTest, RetryAfterIsLongEnoughAndResetAfterMeansFull) {
  const Quota quota = Quota::per(milliseconds(70), 4);
  TypeParam limiter{quota};
  std::mt19937_64 rng(17);
  Instant now = t0;
  int denials = 0;
  for (int i = 0; i < 5000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
    const std::uint64_t cost = 1 + rng() % 4;
    const Decision d = limiter.try_acquire_at(now, cost);
    if (d.verdict() == Verdict::Denied) {
      ++denials;
      // Waiting `retry_after` admits the same cost, if nothing else is admitted meanwhile.
      ASSERT_TRUE(limiter.peek_at(now + d.retry_after(), cost).allowed())
          << "step " << i << ": " << to_string(d);
    }
    // After `reset_after`, the whole burst is available.
    ASSERT_EQ(limiter.peek_at(now + d.reset_after(), 0).remaining(), quota.burst())
        << "step " << i << ": " << to_string(d);
  }
  EXPECT_GT(denials, 100);
}

TYPED_TEST(LimiterContractTest, HostileInstantsAndQuotasAreAnsweredWithoutUndefinedBehaviour) {
  // Run under the asan preset, UBSan turns any overflow here into a failure.
  for (const Quota& quota : {Quota::per(Nanos{1}, 1), Quota::per(hours(24 * 365 * 70), 1),
                             Quota::per_second(1'000'000'000)}) {
    TypeParam limiter{quota};
    for (const Instant at : {Instant::min(), Instant{}, Instant::max(), Instant::min(), t0}) {
      for (const std::uint64_t cost :
           {std::uint64_t{0}, std::uint64_t{1}, quota.burst(), std::uint64_t{4'294'967'295u}}) {
        const Decision d = limiter.try_acquire_at(at, cost);
        EXPECT_GE(d.retry_after(), Nanos::zero());
        EXPECT_GE(d.reset_after(), Nanos::zero());
        EXPECT_LE(d.remaining(), quota.burst());
      }
    }
  }
  // A period of 100 years is refused when the quota is made, with the value in the message.
  const Result<Quota> century = Quota::make(hours(24 * 365 * 100), 1, 1);
  ASSERT_FALSE(century.has_value());
  EXPECT_NE(century.error().message().find("at most 2^61 ns"), std::string::npos);
}

TYPED_TEST(LimiterContractTest, StaleTimeOnOneThreadNeverBreaksTheBound) {
  const Quota quota = Quota::per(milliseconds(10), 4);
  TypeParam limiter{quota};
  std::mt19937_64 rng(71360);
  std::vector<testkit::Operation<LimiterCall>> history;
  std::int64_t now = t0.time_since_epoch().count();
  for (int i = 0; i < 50'000; ++i) {
    now += static_cast<std::int64_t>(rng() % 3'000'000);
    const Instant seen{Nanos{now - static_cast<std::int64_t>(rng() % 30'000'000)}};
    const std::uint64_t cost = 1 + rng() % 2;
    history.push_back({0,
                       i,
                       "",
                       static_cast<std::uint64_t>(2 * i),
                       static_cast<std::uint64_t>(2 * i + 1),
                       {},
                       {},
                       LimiterCall{seen, cost, limiter.try_acquire_at(seen, cost)},
                       {}});
  }
  EXPECT_GT(testkit::admitted_cost(history), 1000u);
  const auto violation = Contract<TypeParam>::bound(history, quota);
  EXPECT_FALSE(violation.has_value()) << violation->describe();
}

// At one instant every limiter here is the same sequential object: a call of cost n is admitted
// iff the cost admitted so far plus n fits the burst, and `remaining` is what is left.
struct OneInstantModel {
  using State = std::uint64_t;  // Cost admitted so far.
  std::uint64_t burst;
  State init() const { return 0; }
  std::optional<State> step(State admitted, const LimiterCall& call) const {
    const bool fits = admitted + call.cost <= burst;
    const State after = fits ? admitted + call.cost : admitted;
    if (call.decision.allowed() != fits || call.decision.remaining() != burst - after) {
      return std::nullopt;
    }
    return after;
  }
  std::size_t hash(State s) const { return std::hash<State>{}(s); }
  std::string expected(State admitted, const LimiterCall& call) const {
    const bool fits = admitted + call.cost <= burst;
    return std::string(fits ? "Allowed" : "Denied") +
           " with remaining=" + std::to_string(burst - (fits ? admitted + call.cost : admitted));
  }
};

TYPED_TEST(LimiterContractTest, ConcurrentCallsAtOneInstantAreLinearizable) {
  const Quota quota = Quota::per_second(40);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    TypeParam limiter{quota};
    const auto report = testkit::run<LimiterCall>(
        {.workers = 4, .seed = seed, .name = "one instant"}, [&](testkit::Worker<LimiterCall>& w) {
          for (int i = 0; i < 8 && w.keep_going(); ++i) {
            testkit::acquire(w, limiter, t0, 1 + w.rng()() % 4);
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    const OneInstantModel model{quota.burst()};
    const auto result = testkit::check_linearizable(report.history, model);
    ASSERT_EQ(result.verdict, testkit::Linearizability::Yes)
        << testkit::describe_linearizability(report.history, model, result, seed);
  }
}

// Concurrent calls across many instants, in rounds: every call of round k is at instant t_k and
// returns before any call of round k + 1 starts, so every order that respects real time feeds
// the model non-decreasing instants. The history must be explained by the algorithm's sequential
// reference model (the one the differential tests compare against), refills included.
TYPED_TEST(LimiterContractTest, ConcurrentRoundsAcrossInstantsAreLinearizableAgainstTheModel) {
  const Quota quota = Quota::per(milliseconds(10), 8);
  const auto model = Contract<TypeParam>::model(quota);
  constexpr int kWorkers = 4;
  constexpr int kRounds = 16;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<Instant> instants;
    Instant at{seconds(1000)};
    for (int k = 0; k < kRounds; ++k) {
      instants.push_back(at);
      at += Nanos{static_cast<std::int64_t>(rng() % 12'000'000)};
    }
    TypeParam limiter{quota};
    std::atomic<int> finished{0};  // Workers done with their rounds so far, summed.
    const auto report = testkit::run<LimiterCall>(
        {.workers = kWorkers, .seed = seed, .name = "rounds"},
        [&](testkit::Worker<LimiterCall>& w) {
          for (std::size_t k = 0; k < instants.size() && w.keep_going(); ++k) {
            for (int i = 0; i < 3; ++i) testkit::acquire(w, limiter, instants[k], w.rng()() % 5);
            finished.fetch_add(1);
            while (finished.load() < kWorkers * static_cast<int>(k + 1) && w.keep_going()) {
              std::this_thread::yield();
            }
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    const auto result = testkit::check_linearizable(report.history, model);
    ASSERT_EQ(result.verdict, testkit::Linearizability::Yes)
        << testkit::describe_linearizability(report.history, model, result, seed);
  }
}

TYPED_TEST(LimiterContractTest, ConcurrentCallersNeverBreakTheBound) {
  const Quota quota = Quota::per(milliseconds(10), 8);
  const int workers = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    TypeParam limiter{quota};
    std::atomic<std::int64_t> true_now{t0.time_since_epoch().count()};
    const auto report = testkit::run<LimiterCall>(
        {.workers = workers, .seed = seed, .name = "contract"},
        [&](testkit::Worker<LimiterCall>& w) {
          for (int i = 0; i < 5'000 && w.keep_going(); ++i) {
            const std::int64_t now = true_now.fetch_add(
                static_cast<std::int64_t>(w.rng()() % 500'000), std::memory_order_relaxed);
            const Instant seen{Nanos{now - static_cast<std::int64_t>(w.rng()() % 5'000'000)}};
            testkit::acquire(w, limiter, seen, 1 + w.rng()() % 3);
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    const auto violation = Contract<TypeParam>::bound(report.history, quota);
    EXPECT_FALSE(violation.has_value()) << "seed " << seed << ": " << violation->describe();
  }
}

}  // namespace
}  // namespace floodgate
