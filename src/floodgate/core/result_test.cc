#include "floodgate/core/result.h"

#include <gtest/gtest.h>

#include <string>

namespace floodgate {
namespace {

TEST(ResultTest, HoldsAValue) {
  Result<int> r = 7;
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(r.value_or(3), 7);
}

TEST(ResultTest, HoldsAnError) {
  Result<std::string> r = Error("input \"x\": bad (got x)");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "input \"x\": bad (got x)");
  EXPECT_EQ(r.value_or("fallback"), "fallback");
}

TEST(ResultDeathTest, ValueOfAnErrorAbortsWithItsMessage) {
  Result<int> r = Error("quota \"0/s\": rate must be at least 1 per period (got 0)");
  EXPECT_DEATH((void)r.value(), "rate must be at least 1 per period");
}

TEST(ResultDeathTest, ErrorOfAValueAborts) {
  Result<int> r = 1;
  EXPECT_DEATH((void)r.error(), "holds a value");
}

}  // namespace
}  // namespace floodgate
