// Many threads against one `GcraLimiter`, on floodgate::testkit: workers only record; the test
// thread checks, after the kit has joined them, order-free invariants and the order the limiter
// itself chose. No wait is without a deadline and no worker asserts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>

#include "floodgate/limiters/gcra.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"

namespace floodgate {
namespace {

using std::chrono::seconds;
using testkit::LimiterCall;
using testkit::Worker;

// Checks a history three ways and returns what failed, or "".
std::string check_all(const testkit::RunReport<LimiterCall>& report, const Quota& quota) {
  std::string problems;
  if (!report.ok()) problems += report.describe();
  if (auto v = testkit::check_rate_bound(report.history, quota)) problems += v->describe() + "\n";
  if (auto v = testkit::check_arrival_time_witness(report.history, internal::Gcra::kFull,
                                                   internal::Gcra::model(quota))) {
    problems += v->message + "\n";
  }
  return problems;
}

TEST(GcraStressTest, SixtyFourCallsAtOneInstantAdmitExactlyTheBurst) {
  constexpr int kRepetitions = 100;
  const Quota quota = Quota::per_second(10);
  const Instant t0{seconds(1)};
  int wrong_rounds = 0;
  std::string first_wrong;
  for (int round = 0; round < kRepetitions; ++round) {
    GcraLimiter<ManualClock> limiter{quota};
    const auto report = testkit::run<LimiterCall>(
        {.workers = 64, .seed = static_cast<std::uint64_t>(round), .name = "burst of 10"},
        [&](Worker<LimiterCall>& w) { testkit::acquire(w, limiter, t0); });
    const auto admitted =
        report.count([](const auto& op) { return op.result->decision.allowed(); });
    std::string problems = check_all(report, quota);
    if (admitted != 10) problems += "admitted " + std::to_string(admitted) + " of 64\n";
    if (!problems.empty() && wrong_rounds++ == 0) {
      first_wrong = "round " + std::to_string(round) + ":\n" + problems;
    }
  }
  EXPECT_EQ(wrong_rounds, 0) << first_wrong;
}

TEST(GcraStressTest, MixedCostsAtOneInstantLoseAndDoubleCountNothing) {
  const Quota quota = Quota::per_second(1000);
  const Instant t0{seconds(1)};
  GcraLimiter<ManualClock> limiter{quota};
  const auto report =
      testkit::run<LimiterCall>({.workers = 8, .name = "mixed costs"}, [&](Worker<LimiterCall>& w) {
        for (int i = 0; i < 200 && w.keep_going(); ++i) {
          testkit::acquire(w, limiter, t0, static_cast<std::uint64_t>(1 + (w.index() + i) % 5));
        }
      });
  EXPECT_EQ(check_all(report, quota), "");
  // Everything admitted plus what remains is exactly the burst, and the burst was drained far
  // enough that no cost from 1 to 5 fits any more.
  EXPECT_EQ(testkit::admitted_cost(report.history) + limiter.peek_at(t0, 0).remaining(), 1000u);
  EXPECT_LT(limiter.peek_at(t0, 0).remaining(), 5u);
}

TEST(GcraStressTest, RandomInstantsRespectTheRateBoundInEveryWindow) {
  const Quota quota = Quota::per_second(1000).with_burst(25);
  GcraLimiter<ManualClock> limiter{quota};
  // A shared "true" clock that workers advance, each reading it possibly stale: the callers of
  // golang/go#71360, who read the time before reaching the limiter.
  std::atomic<std::int64_t> true_now{1'000'000'000};
  const auto report = testkit::run<LimiterCall>(
      {.workers = 4, .seed = 7, .name = "random instants"}, [&](Worker<LimiterCall>& w) {
        for (int i = 0; i < 20'000 && w.keep_going(); ++i) {
          const std::int64_t now = true_now.fetch_add(
              static_cast<std::int64_t>(w.rng()() % 400'000), std::memory_order_relaxed);
          const Instant seen{Nanos{now - static_cast<std::int64_t>(w.rng()() % 20'000'000)}};
          testkit::acquire(w, limiter, seen, 1 + w.rng()() % 4);
        }
      });
  const auto admitted = report.count([](const auto& op) { return op.result->decision.allowed(); });
  // Sanity: the workload really exercised both answers.
  ASSERT_GT(admitted, 1000);
  ASSERT_LT(admitted, static_cast<std::int64_t>(report.history.size()));
  EXPECT_EQ(check_all(report, quota), "");
}

}  // namespace
}  // namespace floodgate
