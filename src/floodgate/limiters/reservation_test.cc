// Reservations, exact cancellation and blocking waits, on GcraLimiter and TokenBucketLimiter
// (typed tests: both keep the same contract). Time comes from a ManualClock: no test sleeps for
// real. Waits run under floodgate::testkit, whose watchdog bounds them; workers record, the test
// thread decides.
#include "floodgate/limiters/reservation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testing/waiting.h"
#include "floodgate/testkit/gtest.h"
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
using waiting_test::WaitCall;

template <typename L>
class ReservationTest : public ::testing::Test {};
TYPED_TEST_SUITE(ReservationTest, Limiters);

template <typename L>
class AcquireTest : public ::testing::Test {};
TYPED_TEST_SUITE(AcquireTest, Limiters);

// The refill time of `cost` permits, as `Reservation::cancel_at` reports it: GCRA charges whole
// intervals (rounded up), the token bucket the exact period / count (rounded to nanoseconds).
template <typename L>
Nanos charge_of(const Quota& quota, std::uint64_t cost) {
  if constexpr (std::is_same_v<L, GcraLimiter<ManualClock>>) {
    return quota.interval() * static_cast<std::int64_t>(cost);
  } else {
    return Nanos{
        std::llround(static_cast<double>(cost) * (static_cast<double>(quota.period().count()) /
                                                  static_cast<double>(quota.count())))};
  }
}

TYPED_TEST(ReservationTest, GrantsInOrderAndSaysWhenEachIsReady) {
  TypeParam limiter{Quota::per_second(10).with_burst(2)};
  const Reservation a = limiter.reserve_at(t0);
  const Reservation b = limiter.reserve_at(t0);
  const Reservation c = limiter.reserve_at(t0);
  const Reservation d = limiter.reserve_at(t0, 2);
  ASSERT_TRUE(a.allowed() && b.allowed() && c.allowed() && d.allowed());
  EXPECT_EQ(a.ready_at(), t0);
  EXPECT_EQ(b.ready_at(), t0);
  EXPECT_EQ(c.ready_at(), t0 + milliseconds(100));
  EXPECT_EQ(d.ready_at(), t0 + milliseconds(300));  // Two more permits after c's.
  EXPECT_EQ(d.delay_from(t0 + milliseconds(50)), milliseconds(250));
  EXPECT_EQ(d.delay_from(t0 + seconds(1)), Nanos::zero());
  // The limiter is in debt until 300 ms: try_acquire waits its turn behind the reservations.
  EXPECT_EQ(limiter.try_acquire_at(t0 + milliseconds(300)).verdict(), Verdict::Denied);
  EXPECT_TRUE(limiter.try_acquire_at(t0 + milliseconds(400)).allowed());
}

TYPED_TEST(ReservationTest, RefusesWithoutTakingAnythingWhenTooFarOrAboveTheBurst) {
  TypeParam limiter{Quota::per_second(10).with_burst(2)};
  ASSERT_TRUE(limiter.reserve_at(t0, 2).allowed());
  const auto before = probe(limiter, t0);
  const Reservation late = limiter.reserve_at(t0, 1, milliseconds(99));
  EXPECT_EQ(late.verdict(), Verdict::Denied);
  EXPECT_EQ(late.ready_at(), t0 + milliseconds(100));  // When it would have been ready.
  EXPECT_EQ(late.delay_from(t0), kNever);
  const Reservation huge = limiter.reserve_at(t0, 3);
  EXPECT_EQ(huge.verdict(), Verdict::ExceedsBurst);
  EXPECT_EQ(probe(limiter, t0), before);
  Reservation moved_from = limiter.reserve_at(t0, 1, milliseconds(100));
  EXPECT_TRUE(moved_from.allowed());
  Reservation owner = std::move(moved_from);
  EXPECT_TRUE(owner.allowed());
  EXPECT_FALSE(moved_from.allowed());  // NOLINT(bugprone-use-after-move): documented state.
  EXPECT_EQ(moved_from.cancel_at(t0), Nanos::zero());
  EXPECT_EQ(owner.cancel_at(t0), milliseconds(100));
}

TYPED_TEST(ReservationTest, CancellingTheMostRecentRestoresTheLimiterExactly) {
  std::mt19937_64 rng(2026);
  for (int trial = 0; trial < 500; ++trial) {
    const Quota quota = Quota::per(milliseconds(1 + rng() % 50), 1 + rng() % 5);
    TypeParam cancelled{quota};
    TypeParam plain{quota};
    Instant now = t0;
    for (int i = 0; i < 20; ++i) {
      now += Nanos{static_cast<std::int64_t>(rng() % 20'000'000)};
      const std::uint64_t cost = rng() % 4;
      if (rng() % 2 == 0) {
        (void)cancelled.try_acquire_at(now, cost);
        (void)plain.try_acquire_at(now, cost);
      } else {
        (void)cancelled.reserve_at(now, cost);
        (void)plain.reserve_at(now, cost);
      }
    }
    Reservation r = cancelled.reserve_at(now, 1 + rng() % quota.burst());
    ASSERT_TRUE(r.allowed());
    // Any instant up to the ready one (after it the permits are presumed used).
    const Instant later =
        now + Nanos{static_cast<std::int64_t>(
                  rng() % (1 + static_cast<std::uint64_t>((r.ready_at() - now).count())))};
    const Nanos refunded = r.cancel_at(later);
    EXPECT_EQ(refunded, charge_of<TypeParam>(quota, r.cost())) << "trial " << trial;
    ASSERT_EQ(probe(cancelled, now - milliseconds(200)), probe(plain, now - milliseconds(200)))
        << "trial " << trial;
    EXPECT_EQ(r.cancel_at(later), Nanos::zero()) << "a second cancel gives nothing back";
    EXPECT_FALSE(r.allowed());
    EXPECT_TRUE(r.is_cancelled());
  }
}

// The sequential model of GCRA with reservations: every admission and reservation, in order,
// as (instant honoured, cost). Replaying a schedule without the cancelled reservation gives the
// state the limiter may not go below (had the reservation never been made, later calls keeping
// their instants).
struct Scheduled {
  Instant at;
  std::uint64_t cost;
  bool cancelled = false;
};

std::int64_t replay(const std::vector<Scheduled>& schedule, const internal::Gcra::Params& params) {
  std::int64_t state = internal::Gcra::kFull;
  for (const Scheduled& s : schedule) {
    if (s.cancelled) continue;
    state = std::max(state, s.at.time_since_epoch().count()) +
            static_cast<std::int64_t>(s.cost) * params.interval;
  }
  return state;
}

// A random history on `limiter` (admissions and reservations over about 70 ms), then the cancel
// of one of its reservations at the last instant: what the partial-refund tests replay.
struct CancelTrial {
  std::vector<Scheduled> schedule;  // In order; the cancelled reservation is marked.
  Instant now;                      // The last instant, when the reservation was cancelled.
  std::uint64_t cost = 0;           // The cancelled reservation's.
  Nanos refunded{};
};

template <typename L>
std::optional<CancelTrial> cancel_one(L& limiter, const Quota& quota, std::mt19937_64& rng) {
  CancelTrial trial{.schedule = {}, .now = t0};
  std::vector<Reservation> reservations;
  std::vector<std::size_t> where;  // Index in `schedule` of each reservation.
  for (int i = 0; i < 12; ++i) {
    trial.now += Nanos{static_cast<std::int64_t>(rng() % 6'000'000)};
    const std::uint64_t cost = 1 + rng() % quota.burst();
    if (rng() % 3 == 0) {
      if (limiter.try_acquire_at(trial.now, cost).allowed()) {
        trial.schedule.push_back({trial.now, cost});
      }
    } else {
      Reservation r = limiter.reserve_at(trial.now, cost);
      where.push_back(trial.schedule.size());
      trial.schedule.push_back({r.ready_at(), cost});
      reservations.push_back(std::move(r));
    }
  }
  if (reservations.empty()) return std::nullopt;
  const std::size_t pick = rng() % reservations.size();
  trial.cost = reservations[pick].cost();
  trial.refunded = reservations[pick].cancel_at(trial.now);
  trial.schedule[where[pick]].cancelled = true;
  return trial;
}

TEST(GcraReservationTest, CancellingUnderLaterCallsNeverLetsAnyoneInEarlierThanWithoutIt) {
  std::mt19937_64 rng(71);
  int exact = 0;
  int partial = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const Quota quota = Quota::per(milliseconds(10), 1 + rng() % 6);
    const internal::Gcra::Params params = internal::Gcra::params(quota);
    GcraLimiter<ManualClock> limiter{quota};
    const std::optional<CancelTrial> t = cancel_one(limiter, quota, rng);
    if (!t) continue;
    const std::int64_t floor = replay(t->schedule, params);
    // No instant from `now` on admits under the limiter what the model without it would deny.
    for (int k = 0; k < 200; ++k) {
      const Instant at = t->now + Nanos{static_cast<std::int64_t>(k) * 700'000};
      for (std::uint64_t cost = 1; cost <= quota.burst(); ++cost) {
        const bool model = internal::Gcra::acquire(floor, at, cost, params).decision.allowed();
        ASSERT_TRUE(model || !limiter.peek_at(at, cost).allowed())
            << "trial " << trial << ": cost " << cost << " admitted at +" << k * 700 << " us";
      }
    }
    ++(t->refunded == charge_of<GcraLimiter<ManualClock>>(quota, t->cost) ? exact : partial);
  }
  // Both kinds of case were exercised.
  EXPECT_GT(exact, 100);
  EXPECT_GT(partial, 100);
}

// The same property for the token bucket, whose refund is GCRA's rule on its empty instants:
// the model replays the schedule without the cancelled reservation in the bucket's own
// arithmetic, and the limiter may not hold more tokens than it at any later instant (up to a
// millionth of a token of floating-point slack).
TEST(TokenBucketReservationTest, CancellingUnderLaterCallsNeverLetsAnyoneInEarlierThanWithoutIt) {
  std::mt19937_64 rng(72);
  int partial = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const Quota quota = Quota::per(milliseconds(7), 1 + rng() % 6);
    const internal::TokenBucket::Params params = internal::TokenBucket::params(quota);
    TokenBucketLimiter<ManualClock> limiter{quota};
    const std::optional<CancelTrial> t = cancel_one(limiter, quota, rng);
    if (!t) continue;
    double floor = internal::TokenBucket::kFull;
    for (const Scheduled& s : t->schedule) {
      if (s.cancelled) continue;
      const auto at = static_cast<double>(s.at.time_since_epoch().count());
      floor = std::max(floor, at - internal::TokenBucket::window_ns(params)) +
              static_cast<double>(s.cost) * params.ns_per_token;
    }
    for (int k = 0; k < 200; ++k) {
      const Instant at = t->now + Nanos{static_cast<std::int64_t>(k) * 700'000};
      const double model =
          std::min(params.burst, (static_cast<double>(at.time_since_epoch().count()) - floor) /
                                     params.ns_per_token);
      ASSERT_LE(limiter.tokens_at(at), std::max(0.0, model) + 1e-6)
          << "trial " << trial << " at +" << k * 700 << " us";
    }
    if (t->refunded < charge_of<TokenBucketLimiter<ManualClock>>(quota, t->cost)) ++partial;
  }
  EXPECT_GT(partial, 100);  // Partial refunds were exercised.
}

TYPED_TEST(ReservationTest, CancellingAfterTheReadyInstantGivesNothingBack) {
  // x/time/rate's rule: past `ready_at` the holder may have used the permits, so a cancel then
  // must not let the limiter admit them a second time (burst + rate x time would be exceeded).
  TypeParam limiter{Quota::per_second(10).with_burst(2)};
  Reservation now = limiter.reserve_at(t0, 2);
  ASSERT_EQ(now.ready_at(), t0);
  EXPECT_EQ(now.cancel_at(t0 + Nanos{1}), Nanos::zero());
  EXPECT_FALSE(limiter.try_acquire_at(t0 + Nanos{1}).allowed());
  Reservation later = limiter.reserve_at(t0 + Nanos{1}, 1);
  ASSERT_EQ(later.ready_at(), t0 + milliseconds(100));
  EXPECT_EQ(later.cancel_at(t0 + milliseconds(100)), milliseconds(100)) << "at the instant: back";
  Reservation again = limiter.reserve_at(t0 + milliseconds(100), 1);
  ASSERT_EQ(again.ready_at(), t0 + milliseconds(100));
  EXPECT_EQ(again.cancel_at(t0 + milliseconds(100) + Nanos{1}), Nanos::zero());
}

TYPED_TEST(ReservationTest, RefundsAllOfAReservationWhoseCapacityLiesBeyondEveryLaterCall) {
  // Burst 4 at 10/s; a reserves 2 at t0 (ready at once), b reserves 1 (ready at once): b's
  // capacity comes after a's, yet a's slots lie beyond now and beyond b's ready instant, so
  // cancelling a gives back all of it.
  TypeParam limiter{Quota::per_second(10).with_burst(4)};
  Reservation a = limiter.reserve_at(t0, 2);
  const Reservation b = limiter.reserve_at(t0, 1);
  ASSERT_EQ(b.ready_at(), t0);
  EXPECT_EQ(a.cancel_at(t0), milliseconds(200));
  EXPECT_EQ(limiter.peek_at(t0, 0).remaining(), 3u);
}

// One operation in the concurrent reservation test: a reservation, or the cancel of one the
// same worker made earlier.
struct ReserveCall {
  bool is_cancel = false;
  int id = 0;  // The reservation's name: worker x 100 + index.
  Instant at{};
  std::uint64_t cost = 0;
  Verdict verdict = Verdict::Denied;  // A reservation's answer ...
  Instant ready{};                    // ... and ready instant; a cancel's refund.
  Nanos refunded{};
  friend bool operator==(const ReserveCall&, const ReserveCall&) = default;
};

// The limiter's rule with reservations held and cancelled, as a sequential model: it remembers
// each granted reservation's states, as the `Reservation` does, to replay its refund.
template <typename L>
struct ReservingModel {
  using Rule = waiting_test::RuleOf<L>;
  struct Held {
    int id;
    typename Rule::Rule::Cancelled r;
    friend bool operator==(const Held& a, const Held& b) {
      return a.id == b.id && waiting_test::same_bits(a.r.before, b.r.before) &&
             waiting_test::same_bits(a.r.after, b.r.after);
    }
  };
  struct State {
    typename Rule::State state;
    std::int64_t last_event;  // x/time/rate's `lastEvent`, for the token bucket's cancel.
    std::vector<Held> held;
    friend bool operator==(const State& a, const State& b) {
      return waiting_test::same_bits(a.state, b.state) && a.last_event == b.last_event &&
             a.held == b.held;
    }
  };
  typename Rule::Params params;

  State init() const { return {Rule::kFull, INT64_MIN, {}}; }
  std::optional<State> step(const State& s, const ReserveCall& c) const {
    State out = s;
    if (!c.is_cancel) {
      const auto [verdict, ready, next] = Rule::reserve(s.state, c.at, c.cost, params);
      if (verdict != c.verdict || (verdict == Verdict::Allowed && ready != c.ready)) {
        return std::nullopt;
      }
      if (verdict == Verdict::Allowed) {
        out.state = next;
        out.last_event = ready.time_since_epoch().count();
        out.held.push_back({c.id,
                            {.before = s.state,
                             .after = next,
                             .charge = Rule::charge(c.cost, params),
                             .cost = c.cost,
                             .ready_at = ready.time_since_epoch().count()}});
      }
      return out;
    }
    const auto it =
        std::find_if(out.held.begin(), out.held.end(), [&](const Held& h) { return h.id == c.id; });
    if (it == out.held.end()) {  // Never granted: nothing to give back.
      if (c.refunded != Nanos::zero()) return std::nullopt;
      return out;
    }
    const auto [next, last_event, refunded] =
        Rule::cancel(s.state, s.last_event, it->r, c.at, params);
    if (refunded != c.refunded) return std::nullopt;
    out.state = next;
    out.last_event = last_event;
    out.held.erase(it);
    return out;
  }
  std::size_t hash(const State& s) const { return Rule::hash(s.state) * 31 + s.held.size(); }
};

TYPED_TEST(ReservationTest, ConcurrentReservationsAndCancelsAreLinearizableAgainstTheRule) {
  const Quota quota = Quota::per(milliseconds(10), 4);
  const ReservingModel<TypeParam> model{waiting_test::RuleOf<TypeParam>::params(quota)};
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    TypeParam limiter{quota};
    std::atomic<std::int64_t> clock{t0.time_since_epoch().count()};
    const auto report = testkit::run<ReserveCall>(
        {.workers = 3, .seed = seed, .name = "reserve and cancel"},
        [&](testkit::Worker<ReserveCall>& w) {
          std::vector<std::pair<int, Reservation>> mine;
          for (int i = 0; i < 9 && w.keep_going(); ++i) {
            const Instant at{
                Nanos{clock.fetch_add(static_cast<std::int64_t>(w.rng()() % 3'000'000))}};
            if (!mine.empty() && w.rng()() % 3 == 0) {
              const std::size_t k = w.rng()() % mine.size();
              const int id = mine[k].first;
              Reservation r = std::move(mine[k].second);
              mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));
              w.step("cancel_at", [&] {
                return ReserveCall{
                    .is_cancel = true, .id = id, .at = at, .refunded = r.cancel_at(at)};
              });
              continue;
            }
            const int id = w.index() * 100 + i;
            const std::uint64_t cost = w.rng()() % 6;  // 5 is above the burst.
            w.step("reserve_at", [&] {
              Reservation r = limiter.reserve_at(at, cost);
              const ReserveCall call{
                  .id = id, .at = at, .cost = cost, .verdict = r.verdict(), .ready = r.ready_at()};
              mine.emplace_back(id, std::move(r));
              return call;
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

TYPED_TEST(AcquireTest, ReturnsAtOnceWhenReadyTooLateOrNever) {
  ManualClock clock{t0};
  TypeParam limiter{Quota::per_second(10).with_burst(2), clock};
  const WaitResult now = limiter.acquire(2, t0);
  EXPECT_EQ(now.status, WaitStatus::Allowed);
  EXPECT_EQ(now.at, t0);
  const auto before = probe(limiter, t0);
  const WaitResult late = limiter.acquire(1, t0 + milliseconds(99));
  EXPECT_EQ(late.status, WaitStatus::DeadlineTooSoon);
  EXPECT_EQ(late.at, t0 + milliseconds(100));
  EXPECT_EQ(limiter.acquire(3, t0 + seconds(100)).status, WaitStatus::ExceedsBurst);
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(limiter.acquire(1, t0 + seconds(1), stopped.get_token()).status, WaitStatus::Cancelled);
  EXPECT_EQ(probe(limiter, t0), before) << "nothing taken by calls that did not wait";
  // A deadline already past refuses even a permit that is free now.
  TypeParam fresh{Quota::per_second(10), clock};
  const WaitResult past = fresh.acquire(1, t0 - Nanos{1});
  EXPECT_EQ(past.status, WaitStatus::DeadlineTooSoon);
  EXPECT_EQ(past.at, t0);
  EXPECT_EQ(fresh.peek_at(t0, 0).remaining(), 10u);
}

TYPED_TEST(AcquireTest, SleepsUntilTheClockReachesItsTurnAndServesWaitersInOrder) {
  ManualClock clock{t0};
  TypeParam limiter{Quota::per_second(10).with_burst(1), clock};
  ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
  constexpr int kWaiters = 3;
  std::atomic<int> admitted{0};
  std::vector<int> admitted_after_step;  // Written by the driver worker only.
  const auto report = testkit::run<WaitCall>(
      {.workers = kWaiters + 1, .name = "waiters"}, [&](testkit::Worker<WaitCall>& w) {
        if (w.index() < kWaiters) {
          // Waiter i reserves only once waiters 0..i-1 sleep: reservations in a known order.
          if (!await_sleepers(clock, w.index(), w))
            return w.fail("the earlier waiters never slept");
          const WaitCall call =
              w.step("acquire", [&] { return WaitCall{limiter.acquire(1, t0 + seconds(10))}; });
          if (call.result.status == WaitStatus::Allowed) admitted.fetch_add(1);
          w.expect_eq(call.result.at, t0 + milliseconds(100) * (w.index() + 1), "ready instant");
          return;
        }
        if (!await_sleepers(clock, kWaiters, w)) return w.fail("the waiters never slept");
        for (int step = 1; step <= kWaiters; ++step) {
          clock.set(t0 + milliseconds(100) * step);
          // Exactly `step` waiters wake; wait (bounded) for the step-th before moving on.
          if (!await_sleepers(clock, kWaiters - step, w)) return w.fail("a waiter did not wake");
          const auto give_up = std::chrono::steady_clock::now() + seconds(20);
          while (admitted.load() < step && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::yield();
          }
          admitted_after_step.push_back(admitted.load());
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(admitted_after_step, (std::vector<int>{1, 2, 3}));
}

TYPED_TEST(AcquireTest, AStopRequestWakesTheWaiterAndRefundsItsReservation) {
  ManualClock clock{t0};
  TypeParam limiter{Quota::per_second(10).with_burst(2), clock};
  ASSERT_TRUE(limiter.try_acquire_at(t0, 2).allowed());
  const auto before = probe(limiter, t0);
  std::stop_source stop;
  const auto report =
      testkit::run<WaitCall>({.workers = 2, .name = "cancel"}, [&](testkit::Worker<WaitCall>& w) {
        if (w.index() == 0) {
          const WaitCall call = w.step("acquire", [&] {
            return WaitCall{limiter.acquire(1, t0 + seconds(10), stop.get_token())};
          });
          w.expect_eq(call.result.status, WaitStatus::Cancelled, "status");
          return;
        }
        if (!await_sleepers(clock, 1, w)) return w.fail("the waiter never slept");
        stop.request_stop();
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(probe(limiter, t0), before) << "the cancelled wait gave its permit back";
}

TYPED_TEST(AcquireTest, JitterDelaysAWakeUpByAtMostTheJitterAndNeverPastTheDeadline) {
  for (int trial = 0; trial < 5; ++trial) {
    ManualClock clock{t0};
    TypeParam limiter{Quota::per_second(10).with_burst(1), clock};
    ASSERT_TRUE(limiter.try_acquire_at(t0).allowed());
    const Nanos jitter = milliseconds(50);
    const Instant deadline = t0 + milliseconds(130);
    const auto report = testkit::run<WaitCall>(
        {.workers = 2, .seed = static_cast<std::uint64_t>(trial), .name = "jitter"},
        [&](testkit::Worker<WaitCall>& w) {
          if (w.index() == 0) {
            const WaitCall call = w.step(
                "acquire", [&] { return WaitCall{limiter.acquire(1, deadline, {}, jitter)}; });
            w.expect_eq(call.result.status, WaitStatus::Allowed, "status");
            return;
          }
          if (!await_sleepers(clock, 1, w)) return w.fail("the waiter never slept");
          clock.set(t0 + milliseconds(100) - Nanos{1});
          // Not ready yet: still asleep (the sleeper re-checks under the clock's lock).
          if (clock.sleepers() != 1) return w.fail("woke before its permit was ready");
          clock.set(deadline);  // ready + 30 ms: the deadline caps the 50 ms jitter.
          if (!await_sleepers(clock, 0, w)) return w.fail("still asleep at the deadline");
        });
    FLOODGATE_ASSERT_RUN_OK(report);
  }
}

}  // namespace
}  // namespace floodgate
