#include "floodgate/testkit/rate_bound.h"

#include <gtest/gtest.h>

namespace floodgate::testkit {
namespace {

using std::chrono::milliseconds;

Instant at_ms(int ms) { return Instant{milliseconds(ms)}; }

TEST(RateBoundTest, AcceptsAHistoryWithinTheQuota) {
  const Quota q = Quota::per_second(10).with_burst(2);  // 2 at once, then one per 100 ms.
  const std::vector<Admission> ok = {
      {at_ms(0), 1}, {at_ms(0), 1}, {at_ms(100), 1}, {at_ms(200), 1}, {at_ms(1000), 2}};
  EXPECT_FALSE(find_rate_bound_violation(ok, q).has_value());
}

TEST(RateBoundTest, CatchesOneTooManyAtOneInstant) {
  const Quota q = Quota::per_second(10);
  std::vector<Admission> history(11, Admission{at_ms(5), 1});
  const auto violation = find_rate_bound_violation(history, q);
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->admitted, 11u);
  EXPECT_EQ(violation->allowed, 10u);
  EXPECT_EQ(violation->from, at_ms(5));
  EXPECT_EQ(violation->to, at_ms(5));
}

TEST(RateBoundTest, CatchesAWindowThatIsOverOnlyAcrossSeveralInstants) {
  const Quota q = Quota::per_second(10).with_burst(2);
  // Unordered on purpose: the check sorts. 2 at 0 ms, then one at 50, 100 and 150 ms: the window
  // [0, 150] allows 2 + 1.5 -> 3 but admitted 5.
  const std::vector<Admission> history = {
      {at_ms(150), 1}, {at_ms(0), 1}, {at_ms(100), 1}, {at_ms(50), 1}, {at_ms(0), 1}};
  const auto violation = find_rate_bound_violation(history, q);
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->admitted, 5u);
  EXPECT_EQ(violation->allowed, 3u);
  EXPECT_NE(violation->describe().find("admitted 5"), std::string::npos);
}

TEST(RateBoundTest, UsesTheExactRateNotARoundedOne) {
  const Quota q = Quota::per_second(3).with_burst(1);
  // One at 0 and one at exactly 1/3 s (333333333.33 ns) is fine at 333333334 ns, too early at
  // 333333333 ns.
  EXPECT_FALSE(find_rate_bound_violation({{Instant{}, 1}, {Instant{Nanos{333'333'334}}, 1}}, q));
  EXPECT_TRUE(find_rate_bound_violation({{Instant{}, 1}, {Instant{Nanos{333'333'333}}, 1}}, q));
  // A billionth of a permit over: allowed with a slack of a millionth, not of a billionth / 2.
  EXPECT_FALSE(
      find_rate_bound_violation({{Instant{}, 1}, {Instant{Nanos{333'333'333}}, 1}}, q, 1e-6));
  EXPECT_TRUE(
      find_rate_bound_violation({{Instant{}, 1}, {Instant{Nanos{333'333'333}}, 1}}, q, 5e-10));
}

}  // namespace
}  // namespace floodgate::testkit
