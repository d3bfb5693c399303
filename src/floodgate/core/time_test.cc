#include "floodgate/core/time.h"

#include <gtest/gtest.h>

#include <limits>

#include "floodgate/core/internal/time_math.h"

namespace floodgate {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

TEST(SaturatingTest, AddSaturatesAtBothEnds) {
  EXPECT_EQ(internal::saturating_add(1, 2), 3);
  EXPECT_EQ(internal::saturating_add(kMax, 1), kMax);
  EXPECT_EQ(internal::saturating_add(kMin, -1), kMin);
  EXPECT_EQ(internal::saturating_add(kMax, kMin), -1);
}

TEST(SaturatingTest, SubSaturatesAtBothEnds) {
  EXPECT_EQ(internal::saturating_sub(5, 7), -2);
  EXPECT_EQ(internal::saturating_sub(kMin, 1), kMin);
  EXPECT_EQ(internal::saturating_sub(kMax, -1), kMax);
  EXPECT_EQ(internal::saturating_sub(0, kMin), kMax);
}

TEST(SaturatingTest, MulSaturatesWithTheSignOfTheProduct) {
  EXPECT_EQ(internal::saturating_mul(3, -4), -12);
  EXPECT_EQ(internal::saturating_mul(kMax, 2), kMax);
  EXPECT_EQ(internal::saturating_mul(kMax, -2), kMin);
  EXPECT_EQ(internal::saturating_mul(kMin, -1), kMax);
}

TEST(SaturatingTest, UnsignedNanosSaturateAtNanosMax) {
  EXPECT_EQ(internal::saturating_nanos(42), Nanos{42});
  EXPECT_EQ(internal::saturating_nanos(std::numeric_limits<std::uint64_t>::max()), Nanos::max());
}

TEST(ClampTest, InstantsOutsideTheRangeAreClampedToItsEnds) {
  EXPECT_EQ(internal::clamped_nanos(Instant{Nanos{123}}), 123);
  EXPECT_EQ(internal::clamped_nanos(Instant::max()), internal::kTimeLimit);
  EXPECT_EQ(internal::clamped_nanos(Instant::min()), -internal::kTimeLimit);
  // The clamp keeps a window's worth of room on both sides of INT64.
  static_assert(internal::kTimeLimit + 2 * internal::kMaxWindow <= kMax);
}

}  // namespace
}  // namespace floodgate
