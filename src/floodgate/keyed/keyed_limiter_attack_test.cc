// The attack a keyed limiter exists to survive: a stream of distinct keys (an IPv6 /64 gives an
// attacker 2^64 of them) through a limiter of bounded size. Memory must stay at the bound, and
// no client that is being limited may get its bucket back.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/testkit/memory.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

// Under a sanitizer, resident memory measures its shadow memory and quarantine, not the limiter;
// the slot bytes the limiter counts are checked everywhere.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kResidentMemoryMeansSomething = false;
#else
constexpr bool kResidentMemoryMeansSomething = true;
#endif

void stream(OverflowPolicy policy, int new_keys) {
  KeyedLimiter<std::string, GcraRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(10), .max_keys = 100'000, .overflow = policy}};
  char key[32];
  // 1,000 clients emptied their buckets at t0; they are limited until t0 + 1 s.
  for (int i = 0; i < 1000; ++i) {
    std::snprintf(key, sizeof key, "client:%06d", i);
    ASSERT_TRUE(keyed.try_acquire_at(key, t0, 10).allowed());
  }
  const std::size_t before = testkit::resident_bytes();
  // The stream: one call per new key, all within 100 ms of caller time.
  const std::int64_t step = 100'000'000 / new_keys;
  for (int i = 0; i < new_keys; ++i) {
    std::snprintf(key, sizeof key, "2001:db8:%07x", i);  // 16 bytes: stored inline.
    (void)keyed.try_acquire_at(key, t0 + Nanos{step * i}, 1);
  }
  const std::size_t grown = testkit::resident_bytes() - before;
  const KeyedLimiterStats stats = keyed.stats();
  EXPECT_LE(stats.keys, 100'000u);
  EXPECT_LE(stats.bytes, 100'000u * 32u * 4u / 3u + 64u * 64u) << "slot tables past the bound";
  if (kResidentMemoryMeansSomething) {
    EXPECT_LE(grown, std::size_t{32} << 20) << "resident memory grew by " << grown << " bytes";
  }
  EXPECT_EQ(stats.forced_evictions, 0u);
  EXPECT_GE(stats.overflow_decisions, static_cast<std::uint64_t>(new_keys) - 100'000u);
  for (int i = 0; i < 1000; ++i) {
    std::snprintf(key, sizeof key, "client:%06d", i);
    // 100 ms after emptying it: one permit back, not the ten a reset would give.
    ASSERT_EQ(keyed.peek_at(key, t0 + milliseconds(100), 0).remaining(), 1u)
        << key << " got its bucket back under " << to_string(policy);
  }
}

TEST(KeyedLimiterAttackTest, TenMillionNewKeysFailingClosedStayBoundedAndResetNobody) {
  stream(OverflowPolicy::RejectNewKeys, 10'000'000);
}

TEST(KeyedLimiterAttackTest, AMillionNewKeysFailingOpenStayBoundedAndResetNobody) {
  stream(OverflowPolicy::AdmitUntracked, 1'000'000);
}

TEST(KeyedLimiterAttackTest, AMillionNewKeysSharingOneOverflowLimiterResetNobody) {
  stream(OverflowPolicy::SharedOverflow, 1'000'000);
}

}  // namespace
}  // namespace floodgate
