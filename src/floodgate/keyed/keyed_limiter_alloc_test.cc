// KeyedLimiter: a call on a key that has state allocates nothing, whatever the key's length or
// type (allocations counted by floodgate/testing/allocations.h).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/testing/allocations.h"

namespace floodgate {
namespace {

using testkit::allocations_in;

const Instant t0{std::chrono::seconds(1000)};

TEST(KeyedLimiterAllocationTest, CallsOnKnownKeysAllocateNothing) {
  KeyedLimiter<std::string, GcraRule, ManualClock> by_name{
      {.default_quota = Quota::per_second(10), .resolver = [](std::string_view key) {
         return key.size() > 30 ? std::optional<Quota>(Quota::per_second(5)) : std::nullopt;
       }}};
  const std::vector<std::string> keys = {"", "user:000001", std::string(16, 'k'),
                                         std::string(64, 'l')};  // Inline, inline, heap.
  for (const std::string& key : keys) ASSERT_TRUE(by_name.try_acquire_at(key, t0).allowed());
  ASSERT_TRUE(by_name.set_quota_at("user:000001", Quota::per_second(20), t0));
  const long named = allocations_in([&] {
    for (int i = 0; i < 1000; ++i) {
      for (const std::string& key : keys) {
        const std::string_view view = key;
        (void)by_name.try_acquire_at(view, t0 + Nanos{i}, 1);
        (void)by_name.peek_at(view, t0 + Nanos{i}, 1);
      }
    }
  });
  EXPECT_EQ(named, 0);

  KeyedLimiter<std::array<std::uint8_t, 16>, TokenBucketRule, ManualClock> by_address{{}};
  const std::array<std::uint8_t, 16> address{0x20, 0x01, 0x0d, 0xb8};
  ASSERT_TRUE(by_address.try_acquire_at(address, t0).allowed());
  const long addressed = allocations_in([&] {
    for (int i = 0; i < 1000; ++i) (void)by_address.try_acquire_at(address, t0 + Nanos{i});
  });
  EXPECT_EQ(addressed, 0);

  // The counter counts: creating a key with a 64-byte name allocates its copy.
  EXPECT_GE(allocations_in([&] { (void)by_name.try_acquire_at(std::string(64, 'm'), t0); }), 1);
}

}  // namespace
}  // namespace floodgate
