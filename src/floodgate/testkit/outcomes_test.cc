#include "floodgate/testkit/outcomes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <utility>

#include "floodgate/limiters/gcra.h"
#include "floodgate/testing/broken_limiters.h"
#include "floodgate/testkit/gtest.h"

namespace floodgate::testkit {
namespace {

using std::chrono::seconds;

const Instant t0{seconds(100)};
constexpr Verdict A = Verdict::Allowed;
constexpr Verdict D = Verdict::Denied;

// Two workers, two calls each, all at t0, against a burst of two.
const std::vector<std::vector<std::uint64_t>> kPrograms = {{1, 1}, {1, 1}};

std::set<Outcome<Verdict>> allowed_for_burst_of_two() {
  const floodgate::internal::Gcra::Params params =
      floodgate::internal::Gcra::params(Quota::per_second(10).with_burst(2));
  return allowed_outcomes(floodgate::internal::Gcra::kFull, kPrograms,
                          [&](std::int64_t state, std::uint64_t cost) {
                            const floodgate::internal::Gcra::Step step =
                                floodgate::internal::Gcra::acquire(state, t0, cost, params);
                            return std::pair{step.decision.verdict(), step.state};
                          });
}

// Runs the scenario once against `limiter` and returns its outcome.
template <typename Limiter>
Outcome<Verdict> run_once(Limiter& limiter, std::uint64_t seed) {
  const auto report =
      run<Verdict>({.workers = 2, .seed = seed, .name = "outcome"}, [&](Worker<Verdict>& w) {
        for (int i = 0; i < 2; ++i) {
          w.step("try_acquire_at(t0)", [&] { return limiter.try_acquire_at(t0, 1).verdict(); });
        }
      });
  Outcome<Verdict> outcome(4, D);
  for (const auto& op : report.history) {
    outcome[static_cast<std::size_t>(op.worker * 2 + op.index)] = *op.result;
  }
  return outcome;
}

TEST(OutcomeTableTest, EnumeratesWhatInterleavingsAllow) {
  // The first two calls in any interleaving pass, and a worker's second call cannot pass when its
  // first did not.
  EXPECT_EQ(allowed_for_burst_of_two(),
            (std::set<Outcome<Verdict>>{{A, A, D, D}, {A, D, A, D}, {D, D, A, A}}));
}

TEST(OutcomeTableTest, ACorrectLimiterProducesOnlyAcceptableOutcomes) {
  OutcomeTable<Verdict> table(allowed_for_burst_of_two());
  for (int i = 0; i < 300; ++i) {
    GcraLimiter<ManualClock> limiter{Quota::per_second(10).with_burst(2)};
    table.record(run_once(limiter, static_cast<std::uint64_t>(i)));
  }
  std::printf("%s", table.describe().c_str());
  EXPECT_EQ(table.forbidden(), 0) << table.describe();
}

TEST(OutcomeTableTest, ABrokenLimitersOutcomeIsGradedForbidden) {
  // Check-then-act, with worker 0's first call held between its read and its write until worker
  // 1 has made both calls: all four pass, which no interleaving allows.
  BrokenGcra limiter(Quota::per_second(10).with_burst(2), Bug::CheckThenAct);
  static thread_local bool hold = false;
  Signal w0_holding;
  Signal w1_done;
  limiter.preempt = [&] {
    if (!hold) return;
    hold = false;
    w0_holding.notify();
    w1_done.wait_for(seconds(10));
  };
  const auto report = run<Verdict>({.workers = 2, .name = "held"}, [&](Worker<Verdict>& w) {
    if (w.index() == 1 && !w.expect(w0_holding.wait_for(seconds(10)), "worker 0 not held")) return;
    hold = w.index() == 0;
    for (int i = 0; i < 2; ++i) {
      w.step("try_acquire_at(t0)", [&] { return limiter.try_acquire_at(t0, 1).verdict(); });
    }
    if (w.index() == 1) w1_done.notify();
  });
  FLOODGATE_ASSERT_RUN_OK(report);
  Outcome<Verdict> outcome(4, D);
  for (const auto& op : report.history) {
    outcome[static_cast<std::size_t>(op.worker * 2 + op.index)] = *op.result;
  }
  OutcomeTable<Verdict> table(allowed_for_burst_of_two());
  table.record(outcome);
  EXPECT_EQ(outcome, (Outcome<Verdict>{A, A, A, A}));
  EXPECT_EQ(table.forbidden(), 1);
  EXPECT_NE(table.describe().find("(Allowed, Allowed, Allowed, Allowed) | 1 | FORBIDDEN"),
            std::string::npos)
      << table.describe();
}

}  // namespace
}  // namespace floodgate::testkit
