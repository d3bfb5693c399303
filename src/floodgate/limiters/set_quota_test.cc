// Live quota changes (`set_quota_at`) on GcraLimiter and TokenBucketLimiter: the policies, what
// reservations and waiters do across a change, calls between changes decided exactly (linearizable
// against the rule with changes as a sequential model), calls that overlap a change decided wholly
// under one quota, and the states and instants at the ends of the clock's range. Time comes from a
// ManualClock or the caller; workers record, the test thread decides.
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

#include "floodgate/core/internal/time_math.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testing/waiting.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"
#include "floodgate/testkit/linearizability.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

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
TYPED_TEST(SetQuotaTest, StartFullRefillsLessWhatReservationsStillOwe) {
  TypeParam limiter{Quota::per_second(10).with_burst(2)};
  ASSERT_TRUE(limiter.reserve_at(t0, 2).allowed());
  Reservation owed = limiter.reserve_at(t0, 2);  // Into debt: ready at t0 + 200 ms.
  ASSERT_EQ(owed.ready_at(), t0 + milliseconds(200));
  limiter.set_quota_at(Quota::per_second(10).with_burst(5), t0, OnQuotaChange::StartFull);
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 3u);  // 5, less the 2 owed.
  EXPECT_EQ(owed.ready_at(), t0 + milliseconds(200)) << "a granted instant never moves";
}

TYPED_TEST(SetQuotaTest, AReservationKeepsItsInstantAndLaterCallersQueueAtTheNewRate) {
  TypeParam limiter{Quota::per_second(1).with_burst(1)};
  ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
  Reservation r = limiter.reserve_at(t0);
  ASSERT_EQ(r.ready_at(), t0 + seconds(1));
  limiter.set_quota_at(Quota::per_second(10).with_burst(1), t0 + milliseconds(500));
  EXPECT_EQ(r.ready_at(), t0 + seconds(1));
  EXPECT_EQ(r.delay_from(t0 + milliseconds(500)), milliseconds(500));
  // Half a permit owed at 1/s at the change is half a permit at 10/s: 50 ms, then its own 100.
  Reservation next = limiter.reserve_at(t0 + milliseconds(500));
  EXPECT_EQ(next.ready_at(), t0 + milliseconds(650));
}

TYPED_TEST(SetQuotaTest, CancellingAReservationFromBeforeAChangeGivesNothingBack) {
  TypeParam limiter{Quota::per_second(10)};
  Reservation before = limiter.reserve_at(t0, 3);
  ASSERT_TRUE(before.allowed());
  limiter.set_quota_at(Quota::per_second(20), t0 + milliseconds(1));
  const auto unchanged = probe(limiter, t0);
  EXPECT_EQ(before.cancel_at(t0 + milliseconds(1)), Nanos::zero());
  EXPECT_TRUE(before.is_cancelled());
  EXPECT_EQ(probe(limiter, t0), unchanged);
  // One made after the change is given back exactly, as without changes.
  Reservation after = limiter.reserve_at(t0 + milliseconds(1), 4);
  ASSERT_TRUE(after.allowed());
  EXPECT_GT(after.cancel_at(t0 + milliseconds(1)), Nanos::zero());
  EXPECT_EQ(probe(limiter, t0), unchanged);
}

TYPED_TEST(SetQuotaTest, AWaiterKeepsItsTurnAcrossAChange) {
  // At 2/s with a burst of 1, one permit taken at t0: the waiter's turn is t0 + 500 ms, under
  // the old quota, whatever the change does.
  for (const Quota next :
       {Quota::per_second(10).with_burst(1), Quota::per_second(1).with_burst(1)}) {
    ManualClock clock{t0};
    TypeParam limiter{Quota::per_second(2).with_burst(1), clock};
    ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
    const auto report = testkit::run<WaitCall>(
        {.workers = 2, .name = next.to_string()}, [&](testkit::Worker<WaitCall>& w) {
          if (w.index() == 0) {
            const WaitCall call =
                w.step("acquire", [&] { return WaitCall{limiter.acquire(1, t0 + seconds(10))}; });
            w.expect_eq(call.result.status, WaitStatus::Allowed, "status");
            w.expect(call.result.at == t0 + milliseconds(500), "ready at its turn");
            return;
          }
          if (!await_sleepers(clock, 1, w)) return w.fail("the waiter never slept");
          limiter.set_quota_at(next, t0);
          clock.set(t0 + milliseconds(499));
          const auto settle = std::chrono::steady_clock::now() + milliseconds(50);
          while (std::chrono::steady_clock::now() < settle) std::this_thread::yield();
          if (clock.sleepers() != 1) return w.fail("woke before its turn");
          clock.set(t0 + milliseconds(500));
          if (!await_sleepers(clock, 0, w)) return w.fail("slept past its turn");
        });
    FLOODGATE_ASSERT_RUN_OK(report);
  }
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
TYPED_TEST(SetQuotaTest, HostileInstantsAreCarriedWithoutOverflow) {
  const Instant extremes[] = {Instant{Nanos{INT64_MIN}}, Instant{Nanos{INT64_MAX}},
                              Instant{Nanos{-1}}, t0};
  for (const Instant at : extremes) {
    for (const OnQuotaChange policy :
         {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion, OnQuotaChange::StartFull}) {
      TypeParam limiter{Quota::per_second(10)};
      ASSERT_TRUE(limiter.reserve_at(t0, 10).allowed());
      ASSERT_TRUE(limiter.reserve_at(t0, 10).allowed());  // A second, into debt.
      limiter.set_quota_at(Quota::per(seconds(3600), 1'000'000'000).with_burst(1), at, policy);
      limiter.set_quota_at(Quota::per_hour(1), at, policy);
      // Whatever the instants did, the limiter still decides, and a day later it is full.
      const Decision d = limiter.try_acquire_at(t0 + seconds(86'400 * 365));
      EXPECT_TRUE(d.allowed() || d.verdict() == Verdict::Denied);
      EXPECT_LE(limiter.peek_at(t0, 0).remaining(), 1u);
    }
  }
}

// Regressions (issue 13): races and states that crashed an earlier design of quota changes.

TYPED_TEST(SetQuotaTest, ReservingAndCancellingWhileTheQuotaChangesNeverCrashes) {
  // Two threads reserve and cancel while a third flips the quota, with nothing between the calls.
  TypeParam limiter{Quota::per_second(1000).with_burst(50)};
  std::atomic<bool> changing{true};
  const auto report = testkit::run<int>(
      {.workers = 3, .name = "reserve, cancel, change"}, [&](testkit::Worker<int>& w) {
        if (w.index() == 2) {
          for (int i = 0; i < 20'000 && w.keep_going(); ++i) {
            limiter.set_quota_at(Quota::per_second(1000 + static_cast<std::uint64_t>(i % 2)),
                                 Instant{});
          }
          changing = false;
          return;
        }
        int rounds = 0;
        while (changing.load() && w.keep_going()) {
          Reservation r = limiter.reserve_at(Instant{}, 1);
          (void)r.cancel_at(Instant{});
          ++rounds;
        }
        w.step("rounds", [&] { return rounds; });
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  // Whatever the races did, the limiter is whole: an hour later it is full.
  EXPECT_EQ(limiter.peek_at(Instant{} + std::chrono::hours(1), 0).remaining(),
            limiter.quota().burst());
}

TEST(SetQuotaGcraTest, StatesAtTheEndOfTimeAreOrdinaryStates) {
  const Instant far = Instant::max();  // Clamped to 2^62 - 1 ns.
  const Quota slowest = Quota::make(Nanos{std::int64_t{1} << 61}, 1, 1).value();
  {
    // Two reservations push the state to INT64_MAX: the largest value, with no special meaning.
    GcraLimiter<ManualClock> limiter{slowest};
    Reservation r1 = limiter.reserve_at(far, 1);
    Reservation r2 = limiter.reserve_at(far, 1);
    ASSERT_TRUE(r1.allowed());
    ASSERT_TRUE(r2.allowed());
    EXPECT_EQ(limiter.peek_at(Instant{}).verdict(), Verdict::Denied);
    EXPECT_EQ(limiter.try_acquire_at(Instant{}, 0).verdict(), Verdict::Denied);
    EXPECT_EQ(limiter.try_acquire_up_to_at(far, 5).permits, 0u);
    EXPECT_EQ(limiter.reserve_at(far, 1).verdict(), Verdict::Denied) << "146 years of debt";
    EXPECT_EQ(r2.cancel_at(far), Nanos{std::int64_t{1} << 61});  // The most recent: exact.
    EXPECT_EQ(r1.cancel_at(far), Nanos{std::int64_t{1} << 61});
    EXPECT_TRUE(limiter.peek_at(Instant{}).allowed()) << "full again";
  }
  {
    // Debt carried to a slower quota at the end of time.
    GcraLimiter<ManualClock> limiter{Quota::per_second(1)};
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.reserve_at(far, 1).allowed());
    limiter.set_quota_at(slowest, far);
    EXPECT_EQ(limiter.peek_at(Instant{}).verdict(), Verdict::Denied);
    EXPECT_EQ(limiter.peek_at(far).verdict(), Verdict::Denied);
    EXPECT_EQ(limiter.try_acquire_at(far, 0).verdict(), Verdict::Denied);
  }
  {
    // A reservation on a fresh limiter at the end of time, then a change and a cancel.
    GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
    Reservation r = limiter.reserve_at(far, 6);
    ASSERT_TRUE(r.allowed());
    limiter.set_quota_at(Quota::per_second(5), far);
    EXPECT_EQ(r.cancel_at(far), Nanos::zero());
    EXPECT_EQ(limiter.peek_at(far, 0).remaining(), 4u);  // 10 - 6, capped at 5.
  }
}

// The calls and changes of the concurrent tests below: rounds of concurrent calls, each round
// on its own, with a change between rounds.
class Rounds {
 public:
  explicit Rounds(int workers) : workers_(workers) {}
  // Waits until every worker has finished round `k`; false if the run stopped or 20 s passed.
  template <typename R>
  bool finish(int k, testkit::Worker<R>& w) {
    finished_.fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + seconds(20);
    while (finished_.load() < workers_ * (k + 1)) {
      if (!w.keep_going() || std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::yield();
    }
    return true;
  }

 private:
  const int workers_;
  std::atomic<int> finished_{0};
};

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
    const auto from = Rule::params(quotas[static_cast<std::size_t>(s.quota)]);
    if (c.is_change) {
      if (c.quota == s.quota && c.policy != OnQuotaChange::StartFull) return s;
      const auto to = Rule::params(quotas[static_cast<std::size_t>(c.quota)]);
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

TYPED_TEST(SetQuotaTest, CallsBetweenChangesAreDecidedExactly) {
  // Three workers call concurrently within a round; between rounds, while nobody calls, one of
  // them changes the quota. The whole history must be linearizable against the rule, with each
  // change a step of the sequential model.
  const std::vector<Quota> quotas = {Quota::per(milliseconds(10), 4),
                                     Quota::per(milliseconds(10), 9),
                                     Quota::per(milliseconds(3), 2).with_burst(6)};
  const ChangingModel<TypeParam> model{quotas};
  const OnQuotaChange policies[] = {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion,
                                    OnQuotaChange::StartFull};
  constexpr int kWorkers = 3;
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    TypeParam limiter{quotas[0]};
    std::atomic<std::int64_t> clock{t0.time_since_epoch().count()};
    Rounds rounds(kWorkers);
    const auto report = testkit::run<ChangeCall>(
        {.workers = kWorkers, .seed = seed, .name = "changes between rounds"},
        [&](testkit::Worker<ChangeCall>& w) {
          for (int k = 0; k < 8 && w.keep_going(); ++k) {
            for (int i = 0; i < 3; ++i) {
              const Instant at{
                  Nanos{clock.fetch_add(static_cast<std::int64_t>(w.rng()() % 400'000))}};
              // Costs 0 to 10: the out-of-line paths (cost 0, above the burst) too.
              const std::uint64_t cost = w.rng()() % 11;
              w.step("try_acquire_at", [&] {
                return ChangeCall{
                    .at = at, .cost = cost, .decision = limiter.try_acquire_at(at, cost)};
              });
            }
            if (!rounds.finish(2 * k, w)) return w.fail("a round never finished");
            if (w.index() == 0) {
              const Instant at{Nanos{clock.fetch_add(100'000)}};
              ChangeCall change{.is_change = true, .at = at};
              change.quota = static_cast<int>(w.rng()() % quotas.size());
              change.policy = policies[w.rng()() % 3];
              w.step("set_quota_at", [&] {
                limiter.set_quota_at(quotas[static_cast<std::size_t>(change.quota)], at,
                                     change.policy);
                return change;
              });
            }
            if (!rounds.finish(2 * k + 1, w)) return w.fail("a change never finished");
          }
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    const auto result = testkit::check_linearizable(report.history, model);
    ASSERT_EQ(result.verdict, testkit::Linearizability::Yes)
        << "seed " << seed << "\n"
        << testkit::describe_linearizability(report.history, model, result, seed);
  }
}

// Reports whether `d`, for `cost` at `at`, is a decision the GCRA rule makes under `quota` for
// some state: the state the call saw is read back from `reset_after` (and the charge).
bool gcra_explains(const Decision& d, Instant at, std::uint64_t cost, const Quota& quota) {
  const internal::Gcra::Params p = internal::Gcra::params(quota);
  if (d.limit() != p.burst) return false;
  std::int64_t used = d.reset_after().count();
  if (d.allowed() && cost > 0) used -= static_cast<std::int64_t>(cost) * p.interval;
  if (used < 0) return false;
  const std::int64_t seen = internal::clamped_nanos(at) + used;
  return internal::Gcra::acquire(seen, at, cost, p).decision == d;
}

TYPED_TEST(SetQuotaTest, CallsThatOverlapAChangeAreDecidedWhollyUnderOneQuota) {
  // Two workers call (try_acquire_at, reserve_at and cancel_at), one waits in acquire, one moves
  // the clock, and one changes the quota 300 times, all at once. Every decision must be one that
  // a single quota gives (for GCRA, read back exactly; for the token bucket, its burst), every
  // wait must end, and afterwards the limiter must be whole.
  const std::vector<Quota> quotas = {Quota::per(milliseconds(10), 4),
                                     Quota::per(milliseconds(3), 2).with_burst(6),
                                     Quota::per(milliseconds(7), 9)};
  const OnQuotaChange policies[] = {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion,
                                    OnQuotaChange::StartFull};
  struct Call {
    int kind = 0;  // 0: try_acquire_at; 1: reserve_at; 2: acquire.
    Instant at{};
    std::uint64_t cost = 0;
    Decision decision{Verdict::Denied, 0, 0, 1, Nanos::zero(), Nanos::zero()};
    Verdict reserved = Verdict::Denied;
    WaitResult waited{WaitStatus::Cancelled, Instant{}};
    Instant deadline{};
    bool operator==(const Call&) const { return false; }
  };
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    ManualClock clock{t0};
    TypeParam limiter{quotas[0], clock};
    std::atomic<int> busy{4};  // Workers still calling, changing or waiting.
    const auto report = testkit::run<Call>(
        {.workers = 5, .seed = seed, .name = "overlapping changes"}, [&](testkit::Worker<Call>& w) {
          const int me = w.index();
          if (me == 4) {  // The clock: 100 us a step until everyone else is done.
            const auto give_up = std::chrono::steady_clock::now() + seconds(20);
            while (busy.load() > 0) {
              if (!w.keep_going() || std::chrono::steady_clock::now() > give_up) {
                return w.fail("the others never finished");
              }
              clock.advance(std::chrono::microseconds(100));
              std::this_thread::yield();
            }
            return;
          }
          for (int i = 0; i < 300 && w.keep_going(); ++i) {
            const Instant now = clock.now();
            if (me == 0) {
              limiter.set_quota_at(quotas[w.rng()() % quotas.size()], now, policies[w.rng()() % 3]);
            } else if (me == 3) {
              if (i >= 60) break;
              const Instant deadline = now + milliseconds(w.rng()() % 20);
              w.step("acquire", [&] {
                return Call{.kind = 2,
                            .at = now,
                            .cost = 1,
                            .waited = limiter.acquire(1, deadline),
                            .deadline = deadline};
              });
            } else if (w.rng()() % 3 == 0) {
              const std::uint64_t cost = w.rng()() % 4;
              w.step("reserve_at, cancel_at", [&] {
                Reservation r = limiter.reserve_at(now, cost, milliseconds(5));
                const Verdict v = r.verdict();
                (void)r.cancel_at(clock.now());
                return Call{.kind = 1, .at = now, .cost = cost, .reserved = v};
              });
            } else {
              const std::uint64_t cost = w.rng()() % 11;
              w.step("try_acquire_at", [&] {
                return Call{.at = now, .cost = cost, .decision = limiter.try_acquire_at(now, cost)};
              });
            }
          }
          busy.fetch_sub(1);
        });
    FLOODGATE_ASSERT_RUN_OK(report);
    int decisions = 0;
    for (const auto& op : report.history) {
      const Call& c = *op.result;
      if (c.kind == 2) {
        // A waiter is served by its deadline, or told at once that it would not be.
        ASSERT_TRUE(c.waited.status == WaitStatus::Allowed ||
                    c.waited.status == WaitStatus::DeadlineTooSoon)
            << to_string(c.waited.status);
        if (c.waited.allowed()) {
          ASSERT_LE(c.waited.at, c.deadline);
        }
        continue;
      }
      if (c.kind != 0) continue;
      ++decisions;
      bool explained = false;
      for (const Quota& q : quotas) {
        if constexpr (std::is_same_v<TypeParam, GcraLimiter<ManualClock>>) {
          explained = explained || gcra_explains(c.decision, c.at, c.cost, q);
        } else {
          explained = explained || c.decision.limit() == q.burst();
        }
      }
      ASSERT_TRUE(explained) << "seed " << seed << ": " << c.cost << " at " << (c.at - t0).count()
                             << "ns: " << to_string(c.decision) << " is no single quota's decision";
    }
    EXPECT_GT(decisions, 100);
    EXPECT_EQ(limiter.peek_at(clock.now() + seconds(10), 0).remaining(), limiter.quota().burst());
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
