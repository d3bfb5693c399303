#include "floodgate/redis/internal/circuit_breaker.h"

#include <gtest/gtest.h>

namespace floodgate::internal {
namespace {

using Admit = CircuitBreaker::Admit;
using std::chrono::milliseconds;

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndProbesOneAtATime) {
  CircuitBreaker breaker(3, milliseconds(100));
  const CircuitBreaker::TimePoint t0{};
  // Two failures, a success, two failures: never three in a row.
  for (bool ok : {false, false, true, false, false}) {
    ASSERT_EQ(breaker.admit(t0), Admit::Call);
    breaker.record(ok, Admit::Call, t0);
  }
  EXPECT_FALSE(breaker.is_open());
  breaker.record(false, Admit::Call, t0);  // The third in a row.
  EXPECT_TRUE(breaker.is_open());
  EXPECT_EQ(breaker.opens(), 1u);
  EXPECT_EQ(breaker.admit(t0 + milliseconds(99)), Admit::Refuse);
  // Half-open: one probe; others are refused while it is out.
  EXPECT_EQ(breaker.admit(t0 + milliseconds(100)), Admit::Probe);
  EXPECT_EQ(breaker.admit(t0 + milliseconds(101)), Admit::Refuse);
  // The probe fails: open for another period from its failure.
  breaker.record(false, Admit::Probe, t0 + milliseconds(102));
  EXPECT_EQ(breaker.opens(), 2u);
  EXPECT_EQ(breaker.admit(t0 + milliseconds(201)), Admit::Refuse);
  EXPECT_EQ(breaker.admit(t0 + milliseconds(202)), Admit::Probe);
  breaker.record(true, Admit::Probe, t0 + milliseconds(203));
  EXPECT_FALSE(breaker.is_open());
  EXPECT_EQ(breaker.admit(t0 + milliseconds(204)), Admit::Call);
  // A success reset the count: it takes three new failures to open again.
  breaker.record(false, Admit::Call, t0);
  breaker.record(false, Admit::Call, t0);
  EXPECT_FALSE(breaker.is_open());
}

TEST(CircuitBreakerTest, LateFailuresOfCallsSentBeforeItOpenedDoNotExtendIt) {
  CircuitBreaker breaker(1, milliseconds(100));
  const CircuitBreaker::TimePoint t0{};
  breaker.record(false, Admit::Call, t0);
  ASSERT_TRUE(breaker.is_open());
  breaker.record(false, Admit::Call, t0 + milliseconds(50));  // Sent while closed.
  EXPECT_EQ(breaker.opens(), 1u);
  EXPECT_EQ(breaker.admit(t0 + milliseconds(100)), Admit::Probe);
}

}  // namespace
}  // namespace floodgate::internal
