// Testing code that uses floodgate, with floodgate::testkit: docs/testing.md's example.
#include <gtest/gtest.h>

#include <chrono>

#include "floodgate/floodgate.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"

using namespace std::chrono_literals;
using floodgate::testkit::LimiterCall;
using floodgate::testkit::Worker;

// Your code: at most 5 login attempts per minute, bursts of 5.
class LoginThrottle {
 public:
  floodgate::Decision attempt_at(floodgate::Instant now) { return limiter_.try_acquire_at(now); }
  static floodgate::Quota quota() { return floodgate::Quota::per_minute(5); }

 private:
  floodgate::GcraLimiter<> limiter_{quota()};
};

TEST(LoginThrottleTest, ThirtyTwoConcurrentAttemptsAdmitExactlyFive) {
  LoginThrottle throttle;
  const floodgate::Instant t0{};
  // 32 workers, released together. They only record; nothing asserts in a worker, and a worker
  // that hangs makes the watchdog print where every worker is and fail the test, never hang it.
  auto report = floodgate::testkit::run<LimiterCall>(
      {.workers = 32, .name = "login burst"}, [&](Worker<LimiterCall>& w) {
        w.step("attempt_at(t0)", [&] { return LimiterCall{t0, 1, throttle.attempt_at(t0)}; });
      });
  FLOODGATE_ASSERT_RUN_OK(report);

  // Order-free checks, on the test's thread, after every worker was joined.
  EXPECT_EQ(report.count([](const auto& op) { return op.result->decision.allowed(); }), 5);
  const auto too_many =
      floodgate::testkit::check_rate_bound(report.history, LoginThrottle::quota());
  EXPECT_FALSE(too_many) << too_many->describe();
}
