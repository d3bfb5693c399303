// GcraLimiter and TokenBucketLimiter: changing the quota a million times leaves a limiter's
// memory as it was: a limiter has no memory but its own object, and the changes allocate nothing
// (counted by floodgate/testing/allocations.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testing/allocations.h"

namespace floodgate {
namespace {

const Instant t0{std::chrono::seconds(1000)};

template <typename L>
class SetQuotaMemoryTest : public ::testing::Test {};
using Limiters =
    ::testing::Types<GcraLimiter<>, TokenBucketLimiter<>, GcraLimiter<SteadyClock, Threads::One>>;
TYPED_TEST_SUITE(SetQuotaMemoryTest, Limiters);

TYPED_TEST(SetQuotaMemoryTest, AMillionChangesAllocateNothing) {
  TypeParam limiter{Quota::per_second(10)};
  const Quota quotas[] = {Quota::per_second(10), Quota::per_second(20).with_burst(3),
                          Quota::per_minute(7)};
  const OnQuotaChange policies[] = {OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion,
                                    OnQuotaChange::StartFull};
  const long allocations = testkit::allocations_in([&] {
    for (int i = 0; i < 1'000'000; ++i) {
      const Instant now = t0 + std::chrono::microseconds(i);
      limiter.set_quota_at(quotas[i % 3], now, policies[(i / 3) % 3]);
      (void)limiter.try_acquire_at(now);
    }
  });
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(limiter.quota(), quotas[999'999 % 3]);
}

}  // namespace
}  // namespace floodgate
