#include "floodgate/core/decision.h"

#include <gtest/gtest.h>

namespace floodgate {
namespace {

TEST(DecisionTest, RemainingCountsWholePermitsOfHeadroom) {
  const Decision d(Verdict::Allowed, 10, 250, 100, Nanos::zero(), Nanos{750});
  EXPECT_TRUE(d.allowed());
  EXPECT_EQ(d.remaining(), 2u);  // 250 ns of headroom is two whole 100 ns permits.
  EXPECT_EQ(d.limit(), 10u);
  EXPECT_EQ(d.reset_after(), Nanos{750});
}

TEST(DecisionTest, NegativeHeadroomMeansNothingRemains) {
  const Decision d(Verdict::Denied, 10, -5, 100, Nanos{5}, Nanos{1005});
  EXPECT_FALSE(d.allowed());
  EXPECT_FALSE(static_cast<bool>(d));
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(DecisionTest, DebtIsTheWholePermitsPastEmptyRoundedUp) {
  EXPECT_EQ(Decision(Verdict::Denied, 10, -5, 100, Nanos{5}, Nanos{1005}).debt(), 1u);
  EXPECT_EQ(Decision(Verdict::Denied, 10, -200, 100, Nanos{5}, Nanos{1005}).debt(), 2u);
  EXPECT_EQ(Decision(Verdict::Denied, 3, -2, 1, Nanos{5}, Nanos{5}).debt(), 2u);
  EXPECT_EQ(Decision(Verdict::Denied, 3, INT64_MIN, 1, Nanos{5}, Nanos{5}).debt(),
            std::uint64_t{1} << 63);
  EXPECT_EQ(Decision(Verdict::Allowed, 3, 0, 1, Nanos{0}, Nanos{5}).debt(), 0u);
  EXPECT_EQ(Decision(Verdict::Allowed, 3, 2, 1, Nanos{0}, Nanos{5}).debt(), 0u);
}

TEST(DecisionTest, PrintsAsOneLine) {
  using std::chrono::milliseconds;
  EXPECT_EQ(to_string(Decision(Verdict::Denied, 10, 0, 100, milliseconds(50), milliseconds(1000))),
            "Denied(remaining=0, retry_after=50ms, reset_after=1s, limit=10)");
  EXPECT_EQ(to_string(Decision(Verdict::ExceedsBurst, 3, 300, 100, kNever, Nanos::zero())),
            "ExceedsBurst(remaining=3, retry_after=never, reset_after=0s, limit=3)");
}

TEST(DecisionTest, EqualWhenEveryReportedFieldIsEqual) {
  const Decision a(Verdict::Allowed, 10, 250, 100, Nanos::zero(), Nanos{750});
  EXPECT_EQ(a, Decision(Verdict::Allowed, 10, 299, 100, Nanos::zero(), Nanos{750}));  // 2 remain.
  EXPECT_NE(a, Decision(Verdict::Allowed, 10, 350, 100, Nanos::zero(), Nanos{750}));
  EXPECT_NE(a, Decision(Verdict::Denied, 10, 250, 100, Nanos::zero(), Nanos{750}));
  EXPECT_NE(a, Decision(Verdict::Allowed, 10, 250, 100, Nanos::zero(), Nanos{751}));
}

TEST(DecisionTest, VerdictsHaveNames) {
  EXPECT_EQ(to_string(Verdict::Allowed), "Allowed");
  EXPECT_EQ(to_string(Verdict::Denied), "Denied");
  EXPECT_EQ(to_string(Verdict::ExceedsBurst), "ExceedsBurst");
}

}  // namespace
}  // namespace floodgate
