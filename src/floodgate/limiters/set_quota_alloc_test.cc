// GcraLimiter and TokenBucketLimiter: changing the quota a million times leaves a limiter's
// memory as it was. This binary replaces the global allocation functions to count the calls made
// while a counter is armed; a limiter has no other memory than its own object.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

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
  allocations.store(0);
  counting.store(true);
  for (int i = 0; i < 1'000'000; ++i) {
    const Instant now = t0 + std::chrono::microseconds(i);
    limiter.set_quota_at(quotas[i % 3], now, policies[(i / 3) % 3]);
    (void)limiter.try_acquire_at(now);
  }
  counting.store(false);
  EXPECT_EQ(allocations.load(), 0);
  // A mutation that allocates on each change (as the design this replaced did) fails this test.
  EXPECT_EQ(limiter.quota(), quotas[999'999 % 3]);
}

}  // namespace
}  // namespace floodgate
