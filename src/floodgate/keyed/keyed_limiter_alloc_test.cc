// KeyedLimiter: a call on a key that has state allocates nothing, whatever the key's length or
// type. This binary replaces the global allocation functions to count the calls made while a
// counter is armed.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "floodgate/keyed/keyed_limiter.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC sees a `delete` of memory from a `new` it inlined as malloc, and warns of a mismatch that
// the replacement pair makes correct.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace floodgate {
namespace {

const Instant t0{std::chrono::seconds(1000)};

// Returns the allocations `calls` makes.
template <typename F>
long allocations_in(F&& calls) {
  allocations.store(0);
  counting.store(true);
  calls();
  counting.store(false);
  return allocations.load();
}

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
