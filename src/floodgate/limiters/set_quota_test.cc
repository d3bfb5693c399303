// Live quota changes (`set_quota_at`) on GcraLimiter and TokenBucketLimiter: the policies,
// reservations and waiters carried across a change, and concurrent callers that see the old
// quota or the new one, never a mix (linearizable against the rule with changes as a sequential
// model). Time comes from a ManualClock or the caller; workers record, the test thread decides.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/limiters/waiting_test_util.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"
#include "floodgate/testkit/linearizability.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

// What each change keeps until the limiter is destroyed, as gcra.h documents it.
static_assert(sizeof(internal::Epoch<GcraParams>) <= 128);
static_assert(sizeof(internal::Epoch<TokenBucketParams>) <= 128);

using waiting_test::await_sleepers;
using waiting_test::Limiters;
using waiting_test::probe;
using waiting_test::RuleOf;
using waiting_test::WaitCall;

template <typename L>
class SetQuotaTest : public ::testing::Test {};
TYPED_TEST_SUITE(SetQuotaTest, Limiters);

TYPED_TEST(SetQuotaTest, KeepsTheRemainingPermitsCappedAtTheNewBurst) {
  TypeParam limiter{Quota::per_second(10)};
  ASSERT_TRUE(limiter.try_acquire_at(t0, 4).allowed());
  limiter.set_quota_at(Quota::per_second(20), t0);  // 6 left, of 20.
  EXPECT_EQ(limiter.quota(), Quota::per_second(20));
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 6u);
  EXPECT_EQ(limiter.peek_at(t0 + milliseconds(50), 0).remaining(), 7u);  // Refilling at 20/s.
  EXPECT_EQ(limiter.try_acquire_at(t0, 7).verdict(), Verdict::Denied);
  EXPECT_TRUE(limiter.try_acquire_at(t0, 6).allowed());
  limiter.set_quota_at(Quota::per_second(5), t0 + seconds(5));  // Full at 20, capped at 5.
  EXPECT_EQ(limiter.peek_at(t0 + seconds(5), 0).remaining(), 5u);
  EXPECT_EQ(limiter.try_acquire_at(t0 + seconds(5), 6).verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(limiter.quota(), Quota::per_second(5));
}

TYPED_TEST(SetQuotaTest, OffersProportionalAndFreshStarts) {
  TypeParam proportional{Quota::per_second(10)};
  ASSERT_TRUE(proportional.try_acquire_at(t0, 5).allowed());
  proportional.set_quota_at(Quota::per_second(100), t0, OnQuotaChange::KeepProportion);
  EXPECT_EQ(proportional.peek_at(t0, 0).remaining(), 50u);  // Half used, before and after.

  TypeParam fresh{Quota::per_second(10)};
  ASSERT_TRUE(fresh.try_acquire_at(t0, 10).allowed());
  fresh.set_quota_at(Quota::per_second(3), t0, OnQuotaChange::StartFull);
  EXPECT_EQ(fresh.peek_at(t0, 0).remaining(), 3u);
}

TYPED_TEST(SetQuotaTest, StartFullServesTheReservationsOwedFirst) {
  TypeParam limiter{Quota::per_second(10).with_burst(2)};
  ASSERT_TRUE(limiter.reserve_at(t0, 2).ok());
  Reservation owed = limiter.reserve_at(t0, 2);  // Into debt: ready at t0 + 200 ms.
  ASSERT_EQ(owed.ready_at(), t0 + milliseconds(200));
  limiter.set_quota_at(Quota::per_second(10).with_burst(5), t0, OnQuotaChange::StartFull);
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 3u);  // 5, less the 2 owed.
  owed.refresh();
  EXPECT_EQ(owed.ready_at(), t0);  // The fresh bucket covers it.
}

TYPED_TEST(SetQuotaTest, SettingTheSameQuotaAgainChangesNothing) {
  TypeParam limiter{Quota::per_second(10)};
  ASSERT_TRUE(limiter.try_acquire_at(t0, 7).allowed());
  const auto before = probe(limiter, t0);
  limiter.set_quota_at(Quota::per_second(10), t0 + milliseconds(3));
  limiter.set_quota_at(Quota::per_second(10), t0, OnQuotaChange::KeepProportion);
  EXPECT_EQ(probe(limiter, t0), before);
  limiter.set_quota_at(Quota::per_second(10), t0, OnQuotaChange::StartFull);  // A reset.
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 10u);
}

TYPED_TEST(SetQuotaTest, AReservationRefreshedAfterAChangeIsReadyAtTheNewQuota) {
  TypeParam limiter{Quota::per_second(1).with_burst(1)};
  ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
  Reservation r = limiter.reserve_at(t0);
  ASSERT_EQ(r.ready_at(), t0 + seconds(1));
  limiter.set_quota_at(Quota::per_second(10).with_burst(1), t0 + milliseconds(500));
  EXPECT_EQ(r.ready_at(), t0 + seconds(1)) << "fixed until refreshed";
  r.refresh();
  // Half a permit owed at 1/s at the change is half a permit at 10/s: 50 ms more.
  EXPECT_EQ(r.ready_at(), t0 + milliseconds(550));
  EXPECT_EQ(r.delay_from(t0 + milliseconds(500)), milliseconds(50));
  // A later caller queues behind it at the new rate.
  Reservation next = limiter.reserve_at(t0 + milliseconds(500));
  EXPECT_EQ(next.ready_at(), t0 + milliseconds(650));
  // A fresh bucket of 3 pays the 1.5 permits owed at once.
  limiter.set_quota_at(Quota::per_second(10).with_burst(3), t0 + milliseconds(500),
                       OnQuotaChange::StartFull);
  r.refresh();
  next.refresh();
  EXPECT_EQ(r.ready_at(), t0 + milliseconds(500));
  EXPECT_EQ(next.ready_at(), t0 + milliseconds(500));
  EXPECT_EQ(limiter.peek_at(t0 + milliseconds(500), 0).remaining(), 1u);
}

TYPED_TEST(SetQuotaTest, CancellingTheMostRecentReservationAfterChangesRestoresTheLimiterExactly) {
  std::mt19937_64 rng(5);
  const OnQuotaChange policies[] = {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion,
                                    OnQuotaChange::StartFull};
  int refunded = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const auto random_quota = [&] {
      return Quota::per(milliseconds(1 + rng() % 40), 1 + rng() % 6);
    };
    const Quota first = random_quota();
    TypeParam with{first};
    TypeParam without{first};
    Instant now = t0;
    for (int i = 0; i < 10; ++i) {
      now += Nanos{static_cast<std::int64_t>(rng() % 10'000'000)};
      const std::uint64_t cost = rng() % 4;
      (void)with.reserve_at(now, cost);
      (void)without.reserve_at(now, cost);
    }
    Reservation r = with.reserve_at(now, 1 + rng() % first.burst());
    ASSERT_TRUE(r.ok());
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < changes; ++c) {
      now += Nanos{static_cast<std::int64_t>(rng() % 10'000'000)};
      const Quota next = random_quota();
      const OnQuotaChange policy = policies[rng() % 3];
      with.set_quota_at(next, now, policy);
      without.set_quota_at(next, now, policy);
    }
    // A change may have erased the reservation's effect already (both of its states capped
    // to a full or reset bucket); then nothing is left to give back.
    if (r.cancel_at(now) > Nanos::zero()) ++refunded;
    ASSERT_EQ(probe(with, now - milliseconds(100)), probe(without, now - milliseconds(100)))
        << "trial " << trial << " after " << changes << " change(s)";
  }
  EXPECT_GT(refunded, 100) << "refunds that moved the state were exercised";
}

TYPED_TEST(SetQuotaTest, AWaiterIsWokenAndWaitsForItsTurnUnderTheNewQuota) {
  struct Case {
    Quota next;
    OnQuotaChange policy;
    Nanos ready;  // After t0, under the new quota.
  };
  // At 2/s with a burst of 1, one permit taken at t0: the waiter's is ready at t0 + 500 ms, one
  // permit owed at the change.
  const Case cases[] = {
      // Owed at 10/s: ready 100 ms after the change.
      {Quota::per_second(10).with_burst(1), OnQuotaChange::KeepRemaining, milliseconds(100)},
      // Owed at 1/s: ready 1 s after the change, so it sleeps on past its old instant.
      {Quota::per_second(1).with_burst(1), OnQuotaChange::KeepRemaining, seconds(1)},
      // A fresh bucket pays the permit owed at once: woken, the waiter goes at the change.
      {Quota::per_second(10).with_burst(1), OnQuotaChange::StartFull, Nanos::zero()},
  };
  for (const Case& c : cases) {
    ManualClock clock{t0};
    TypeParam limiter{Quota::per_second(2).with_burst(1), clock};
    ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
    const auto report = testkit::run<WaitCall>(
        {.workers = 2, .name = std::string(to_string(c.policy))},
        [&](testkit::Worker<WaitCall>& w) {
          if (w.index() == 0) {
            const WaitCall call =
                w.step("acquire", [&] { return WaitCall{limiter.acquire(1, t0 + seconds(10))}; });
            w.expect_eq(call.result.status, WaitStatus::Admitted, "status");
            w.expect(call.result.at == t0 + c.ready, "ready at the instant the policy gives");
            return;
          }
          if (!await_sleepers(clock, 1, w)) return w.fail("the waiter never slept");
          limiter.set_quota_at(c.next, t0, c.policy);
          if (c.ready > milliseconds(500)) {
            // The old instant is no longer enough: it sleeps on past it.
            clock.set(t0 + milliseconds(500));
            const auto settle = std::chrono::steady_clock::now() + milliseconds(50);
            while (std::chrono::steady_clock::now() < settle) std::this_thread::yield();
            if (clock.sleepers() != 1) return w.fail("woke at the old instant");
          }
          clock.set(t0 + c.ready);
          if (!await_sleepers(clock, 0, w)) return w.fail("slept past its new turn");
        });
    FLOODGATE_ASSERT_RUN_OK(report);
  }
}

TYPED_TEST(SetQuotaTest, HostileInstantsAreCarriedWithoutOverflow) {
  const Instant extremes[] = {Instant{Nanos{INT64_MIN}}, Instant{Nanos{INT64_MAX}},
                              Instant{Nanos{-1}}, t0};
  for (const Instant at : extremes) {
    for (const OnQuotaChange policy :
         {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion, OnQuotaChange::StartFull}) {
      TypeParam limiter{Quota::per_second(10)};
      ASSERT_TRUE(limiter.reserve_at(t0, 10).ok());
      ASSERT_TRUE(limiter.reserve_at(t0, 10).ok());  // A second, into debt.
      limiter.set_quota_at(Quota::per(seconds(3600), 1'000'000'000).with_burst(1), at, policy);
      limiter.set_quota_at(Quota::per_hour(1), at, policy);
      // Whatever the instants did, the limiter still decides, and a day later it is full.
      const Decision d = limiter.try_acquire_at(t0 + seconds(86'400 * 365));
      EXPECT_TRUE(d.allowed() || d.verdict() == Verdict::Denied);
      EXPECT_LE(limiter.peek_at(t0, 0).remaining(), 1u);
    }
  }
}

// One operation in the concurrent test: an acquire, or a change of quota.
struct ChangeCall {
  bool is_change = false;
  Instant at{};
  std::uint64_t cost = 0;
  int quota = 0;  // For a change: the index of the new quota.
  OnQuotaChange policy = OnQuotaChange::KeepRemaining;
  Decision decision{Verdict::Denied, 0, 0, 1, Nanos::zero(), Nanos::zero()};
  friend bool operator==(const ChangeCall&, const ChangeCall&) = default;
};

// The limiter's rule with quota changes, as a sequential model.
template <typename L>
struct ChangingModel {
  using Rule = RuleOf<L>;
  struct State {
    typename Rule::State state;
    int quota;
    friend bool operator==(const State& a, const State& b) {
      return waiting_test::same_bits(a.state, b.state) && a.quota == b.quota;
    }
  };
  std::vector<Quota> quotas;

  State init() const { return {Rule::kFull, 0}; }
  std::optional<State> step(const State& s, const ChangeCall& c) const {
    const auto from = Rule::Params::from(quotas[static_cast<std::size_t>(s.quota)]);
    if (c.is_change) {
      if (c.quota == s.quota && c.policy != OnQuotaChange::StartFull) return s;
      const auto to = Rule::Params::from(quotas[static_cast<std::size_t>(c.quota)]);
      return State{Rule::change(s.state, c.at, from, to, c.policy), c.quota};
    }
    const auto [decision, next] = Rule::acquire(s.state, c.at, c.cost, from);
    if (!(decision == c.decision)) return std::nullopt;
    return State{next, s.quota};
  }
  std::size_t hash(const State& s) const {
    return Rule::hash(s.state) * 31 + static_cast<std::size_t>(s.quota);
  }
};

TYPED_TEST(SetQuotaTest, ConcurrentCallersSeeTheOldQuotaOrTheNewNeverAMix) {
  const std::vector<Quota> quotas = {Quota::per(milliseconds(10), 4),
                                     Quota::per(milliseconds(10), 9),
                                     Quota::per(milliseconds(3), 2).with_burst(6)};
  const ChangingModel<TypeParam> model{quotas};
  const OnQuotaChange policies[] = {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion,
                                    OnQuotaChange::StartFull};
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    TypeParam limiter{quotas[0]};
    std::atomic<std::int64_t> clock{t0.time_since_epoch().count()};
    const auto report = testkit::run<ChangeCall>(
        {.workers = 3, .seed = seed, .name = "changes"}, [&](testkit::Worker<ChangeCall>& w) {
          for (int i = 0; i < 12 && w.keep_going(); ++i) {
            const Instant at{
                Nanos{clock.fetch_add(static_cast<std::int64_t>(w.rng()() % 400'000))}};
            if (w.index() == 0 && i % 3 == 2) {
              ChangeCall change{.is_change = true, .at = at};
              change.quota = static_cast<int>(w.rng()() % quotas.size());
              change.policy = policies[w.rng()() % 3];
              w.step("set_quota_at", [&] {
                limiter.set_quota_at(quotas[static_cast<std::size_t>(change.quota)], at,
                                     change.policy);
                return change;
              });
              continue;
            }
            // Costs 0 to 10: the rare paths (cost 0, above the burst) race with changes too.
            const std::uint64_t cost = w.rng()() % 11;
            w.step("try_acquire_at", [&] {
              return ChangeCall{
                  .at = at, .cost = cost, .decision = limiter.try_acquire_at(at, cost)};
            });
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    const auto result = testkit::check_linearizable(report.history, model);
    ASSERT_EQ(result.verdict, testkit::Linearizability::Yes)
        << "seed " << seed << "\n"
        << testkit::describe_linearizability(report.history, model, result, seed);
  }
}

TYPED_TEST(SetQuotaTest, KeepingTheRemainingPermitsNeverAdmitsMoreThanTheLargerQuota) {
  // In rounds of 3 ms of caller time: four threads call at random instants of the round (stale
  // with respect to each other) while a fifth flips the quota at the round's last instant,
  // racing with them; a spin barrier separates rounds, so no change is older than a call
  // decided before it (gcra_change_quota's condition). In every window of caller instants the
  // admitted cost stays within the larger quota's bound.
  const Quota small = Quota::per(milliseconds(10), 3);
  const Quota large = Quota::per(milliseconds(10), 8);
  constexpr int kWorkers = 5;
  constexpr int kRounds = 40;
  constexpr std::int64_t kSpan = 3'000'000;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    TypeParam limiter{small};
    std::atomic<int> finished{0};  // Workers done with their rounds so far, summed.
    const auto report = testkit::run<testkit::LimiterCall>(
        {.workers = kWorkers, .seed = seed, .name = "bound"},
        [&](testkit::Worker<testkit::LimiterCall>& w) {
          for (int k = 0; k < kRounds && w.keep_going(); ++k) {
            const Instant start = t0 + Nanos{kSpan * k};
            if (w.index() == kWorkers - 1) {
              limiter.set_quota_at(k % 2 == 0 ? large : small, start + Nanos{kSpan});
            } else {
              for (int i = 0; i < 6; ++i) {
                const Instant at = start + Nanos{static_cast<std::int64_t>(w.rng()() % kSpan)};
                (void)testkit::acquire(w, limiter, at, 1 + w.rng()() % 3);
              }
            }
            finished.fetch_add(1);
            const auto give_up = std::chrono::steady_clock::now() + seconds(20);
            while (finished.load() < kWorkers * (k + 1)) {
              if (!w.keep_going() || std::chrono::steady_clock::now() > give_up) {
                return w.fail("the other workers never finished round " + std::to_string(k));
              }
              std::this_thread::yield();
            }
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    EXPECT_GT(testkit::admitted_cost(report.history), 0u);
    const auto violation = testkit::check_rate_bound(report.history, large);
    EXPECT_FALSE(violation) << "seed " << seed << ": " << violation->describe();
  }
}

}  // namespace
}  // namespace floodgate
