// The kit's checkers against deliberately broken limiters: each bug must be caught by the
// cheapest checker that applies to it, deterministically under a controlled schedule, and the
// detection rates under free-running schedules are printed.
#include "floodgate/testkit/limiter_checks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "floodgate/limiters/gcra.h"
#include "floodgate/testing/broken_limiters.h"
#include "floodgate/testkit/gtest.h"

namespace floodgate::testkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(100)};

std::optional<WitnessViolation> gcra_witness(const std::vector<Operation<LimiterCall>>& history,
                                             const Quota& quota) {
  return check_arrival_time_witness(history, floodgate::internal::Gcra::kFull,
                                    floodgate::internal::Gcra::model(quota));
}

// Worker 0 reads the state and is held at the preemption point until worker 1 has finished a
// whole call: the interleaving that breaks a non-atomic read-modify-write. Every wait has a
// deadline; a missed one is recorded as a failure of the run.
RunReport<LimiterCall> run_preempted_pair(BrokenGcra& limiter) {
  static thread_local bool held = false;
  Signal w0_holding;
  Signal w1_done;
  limiter.preempt = [&] {
    if (!held) return;
    w0_holding.notify();
    w1_done.wait_for(seconds(10));
  };
  return run<LimiterCall>({.workers = 2, .name = "preempted pair"}, [&](Worker<LimiterCall>& w) {
    if (w.index() == 0) {
      held = true;
      acquire(w, limiter, t0);
      held = false;
      return;
    }
    if (!w.expect(w0_holding.wait_for(seconds(10)),
                  "worker 0 never reached the preemption point")) {
      return;
    }
    acquire(w, limiter, t0);
    w1_done.notify();
  });
}

TEST(BrokenLimiterTest, CheckThenActIsCaughtByTheCountAndTheRateBound) {
  const Quota quota = Quota::per_second(10).with_burst(1);
  BrokenGcra limiter(quota, Bug::CheckThenAct);
  const auto report = run_preempted_pair(limiter);
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(admitted_cost(report.history), 2u);  // Two of a burst of one.
  const auto bound = check_rate_bound(report.history, quota);
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->admitted, 2u);
  EXPECT_EQ(bound->allowed, 1u);
  EXPECT_TRUE(gcra_witness(report.history, quota).has_value());
}

TEST(BrokenLimiterTest, DoubleCountOnRetryIsCaughtByTheWitnessOrderOnly) {
  // It admits less than it may, so the count and the rate bound hold; only replaying in the
  // limiter's own order shows that worker 0's decision cannot be explained.
  const Quota quota = Quota::per_second(10).with_burst(3);
  BrokenGcra limiter(quota, Bug::DoubleCountOnRetry);
  const auto report = run_preempted_pair(limiter);
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(admitted_cost(report.history), 2u);
  EXPECT_FALSE(check_rate_bound(report.history, quota).has_value());
  const auto witness = gcra_witness(report.history, quota);
  ASSERT_TRUE(witness.has_value());
  EXPECT_EQ(witness->worker, 0);
  EXPECT_NE(witness->message.find("reset_after=300ms"), std::string::npos) << witness->message;
  EXPECT_NE(witness->message.find("the sequential rule decides Allowed(remaining=1"),
            std::string::npos)
      << witness->message;
}

TEST(BrokenLimiterTest, StaleRefillIsCaughtByTheRateBound) {
  // One caller arrives with a reading a second stale; the next caller, on time, finds a second of
  // refill minted again.
  const Quota quota = Quota::per_second(10);
  StaleRefillBucket limiter(quota);
  const auto report =
      run<LimiterCall>({.workers = 1, .name = "stale"}, [&](Worker<LimiterCall>& w) {
        acquire(w, limiter, t0, 10);
        acquire(w, limiter, t0 - seconds(1), 1);
        acquire(w, limiter, t0, 10);
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  const auto bound = check_rate_bound(report.history, quota);
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->admitted, 20u);
  EXPECT_EQ(bound->allowed, 10u);
  // The same calls against GcraLimiter: within the quota.
  GcraLimiter<ManualClock> good{quota};
  const auto ok =
      run<LimiterCall>({.workers = 1, .name = "stale, gcra"}, [&](Worker<LimiterCall>& w) {
        acquire(w, good, t0, 10);
        acquire(w, good, t0 - seconds(1), 1);
        acquire(w, good, t0, 10);
      });
  EXPECT_FALSE(check_rate_bound(ok.history, quota).has_value());
  EXPECT_FALSE(gcra_witness(ok.history, quota).has_value());
}

TEST(BrokenLimiterTest, PrintsDetectionRatesUnderFreeRunningSchedules) {
  // Informational: how often each checker catches each bug when the scheduler, not the test,
  // picks the interleaving (the preemption point only yields). Asserts nothing about the rates,
  // which depend on the machine; the deterministic cases above assert the catches.
  constexpr int kRuns = 20;
  const Quota quota = Quota::per_second(1000).with_burst(20);
  std::printf("%-22s %6s %10s %10s %10s\n", "bug", "runs", "count", "rate bound", "witness");
  for (const Bug bug : {Bug::CheckThenAct, Bug::DoubleCountOnRetry}) {
    int by_count = 0;
    int by_bound = 0;
    int by_witness = 0;
    for (int r = 0; r < kRuns; ++r) {
      BrokenGcra limiter(quota, bug);
      limiter.preempt = [] { std::this_thread::yield(); };
      const auto report = run<LimiterCall>(
          {.workers = 8, .seed = static_cast<std::uint64_t>(r), .name = "free-running"},
          [&](Worker<LimiterCall>& w) {
            for (int i = 0; i < 10; ++i) acquire(w, limiter, t0);
          });
      by_count += admitted_cost(report.history) > 20 ? 1 : 0;
      by_bound += check_rate_bound(report.history, quota).has_value() ? 1 : 0;
      by_witness += gcra_witness(report.history, quota).has_value() ? 1 : 0;
    }
    std::printf("%-22s %6d %9d%% %9d%% %9d%%\n",
                bug == Bug::CheckThenAct ? "check-then-act" : "double count on retry", kRuns,
                100 * by_count / kRuns, 100 * by_bound / kRuns, 100 * by_witness / kRuns);
  }
}

TEST(LimiterChecksTest, RejectsElevenOfTenAtOneInstantInOnePass) {
  // The history Porcupine gives up on (a burst in which every call overlaps every other, one
  // admission too many) is one linear pass for the rate bound.
  const Quota quota = Quota::per_second(10);
  std::vector<Operation<LimiterCall>> history;
  for (int i = 0; i < 64; ++i) {
    // Each admission reports the state it left, as GcraLimiter does; the eleventh is one too many.
    const bool ok = i < 11;
    const Nanos reset = ok ? milliseconds(100) * (i + 1) : seconds(1);
    history.push_back(Operation<LimiterCall>{
        i,
        0,
        "try_acquire_at(t0)",
        static_cast<std::uint64_t>(i),
        static_cast<std::uint64_t>(64 + i),
        {},
        {},
        LimiterCall{
            t0, 1,
            Decision(ok ? Verdict::Allowed : Verdict::Denied, 10, 1'000'000'000 - reset.count(),
                     100'000'000, ok ? Nanos::zero() : milliseconds(100), reset)},
        {}});
  }
  const auto start = std::chrono::steady_clock::now();
  const auto bound = check_rate_bound(history, quota);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->admitted, 11u);
  EXPECT_EQ(bound->allowed, 10u);
  std::printf(
      "rate bound rejected 11 of 10 among 64 overlapping calls in %lld us\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  EXPECT_TRUE(gcra_witness(history, quota).has_value());
}

TEST(LimiterChecksTest, WitnessOrderRejectsAnOrderThatContradictsRealTime) {
  // Two admissions at one instant: the one that left the later state must not have finished
  // before the other began.
  const Quota quota = Quota::per_second(10);
  auto call = [&](int worker, std::uint64_t invoked, std::uint64_t returned, Nanos reset) {
    return Operation<LimiterCall>{
        worker,
        0,
        "try_acquire_at(t0)",
        invoked,
        returned,
        {},
        {},
        LimiterCall{t0, 1,
                    Decision(Verdict::Allowed, 10, (1'000'000'000 - reset.count()), 100'000'000,
                             Nanos::zero(), reset)},
        {}};
  };
  // w0 took the second slot but returned (stamp 1) before w1, which took the first, began (2).
  const std::vector<Operation<LimiterCall>> history = {call(0, 0, 1, milliseconds(200)),
                                                       call(1, 2, 3, milliseconds(100))};
  const auto witness = check_arrival_time_witness(history, floodgate::internal::Gcra::kFull,
                                                  floodgate::internal::Gcra::model(quota));
  ASSERT_TRUE(witness.has_value());
  EXPECT_NE(witness->message.find("invoked only after it had returned"), std::string::npos)
      << witness->message;
  // Overlapping, the same two calls are fine.
  const std::vector<Operation<LimiterCall>> overlapping = {call(0, 0, 3, milliseconds(200)),
                                                           call(1, 1, 2, milliseconds(100))};
  EXPECT_FALSE(check_arrival_time_witness(overlapping, floodgate::internal::Gcra::kFull,
                                          floodgate::internal::Gcra::model(quota))
                   .has_value());
}

TEST(LimiterChecksTest, ACorrectLimiterShowsNoViolationOverAMillionOperations) {
  const Quota quota = Quota::per_second(100'000).with_burst(50);
  GcraLimiter<ManualClock> limiter{quota};
  const int workers = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer runs this some 30 times slower (half a minute on an idle 2-core machine,
  // past the test's two minutes beside other tests); a quarter of the operations still checks
  // the checkers on a long history.
  const int per_worker = 250'000 / workers;
#else
  const int per_worker = 1'000'000 / workers;
#endif
  std::atomic<std::int64_t> clock{0};
  const auto report = run<LimiterCall>(
      {.workers = workers, .seed = 3, .name = "a million"}, [&](Worker<LimiterCall>& w) {
        for (int i = 0; i < per_worker && w.keep_going(); ++i) {
          const std::int64_t now = clock.fetch_add(4'000, std::memory_order_relaxed);
          const Instant at{Nanos{now - static_cast<std::int64_t>(w.rng()() % 1'000'000)}};
          acquire(w, limiter, at, 1 + w.rng()() % 3);
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  EXPECT_EQ(report.history.size(), static_cast<std::size_t>(per_worker * workers));
  const auto bound = check_rate_bound(report.history, quota);
  EXPECT_FALSE(bound.has_value()) << bound->describe();
  const auto witness = gcra_witness(report.history, quota);
  EXPECT_FALSE(witness.has_value()) << witness->message;
  // The checks do not depend on the order the history is given in.
  auto shuffled = report.history;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(9));
  EXPECT_FALSE(gcra_witness(shuffled, quota).has_value());
}

}  // namespace
}  // namespace floodgate::testkit
