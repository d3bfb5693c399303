// KeyedLimiter. Over every rule, windows included: per-key decisions equal the rule's own
// limiter's, dropping full state never changes a decision, a full limiter resets nobody, the
// sliding log's heap is counted and freed, limits given per call. Over the bucket rules (GCRA,
// token bucket): each overflow policy does what it says, per-key quotas, concurrent callers on
// many keys; then keys that are not strings.
// Time is the caller's; workers record, the test thread decides.
#include "floodgate/keyed/keyed_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "floodgate/core/internal/time_math.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/rules.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/runner.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(1000)};

std::string user(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "user:%06d", i);
  return buf;
}

// The reference: the rule's state per key in an unbounded map, never dropped.
template <class Rule>
class UnboundedModel {
  using Impl = typename Rule::Impl;

 public:
  UnboundedModel() = default;
  UnboundedModel(const UnboundedModel&) = delete;
  UnboundedModel& operator=(const UnboundedModel&) = delete;
  ~UnboundedModel() {
    for (auto& [key, state] : states_) internal::release_state<Impl>(state);
  }
  Decision try_acquire_at(const std::string& key, const Quota& quota, Instant now,
                          std::uint64_t cost) {
    const auto it = states_.try_emplace(key, Impl::kFull).first;
    const auto step = Impl::acquire(it->second, now, cost, Impl::params(quota));
    it->second = step.state;
    return step.decision;
  }

 private:
  std::map<std::string, typename Impl::State> states_;
};

// The single-key limiter of each rule, where there is one.
template <class Rule>
struct LimiterFor {
  using Type = void;
};
template <>
struct LimiterFor<GcraRule> {
  using Type = GcraLimiter<ManualClock>;
};
template <>
struct LimiterFor<TokenBucketRule> {
  using Type = TokenBucketLimiter<ManualClock>;
};
template <>
struct LimiterFor<FixedWindowRule> {
  using Type = FixedWindowLimiter<ManualClock>;
};
template <>
struct LimiterFor<SlidingLogRule> {
  using Type = SlidingWindowLogLimiter<ManualClock>;
};
template <>
struct LimiterFor<SlidingCounterRule> {
  using Type = SlidingWindowCounterLimiter<ManualClock>;
};

template <class Rule>
class KeyedLimiterTest : public testing::Test {
 protected:
  using Keyed = KeyedLimiter<std::string, Rule, ManualClock>;
};
using Rules = testing::Types<GcraRule, TokenBucketRule>;
TYPED_TEST_SUITE(KeyedLimiterTest, Rules);

TYPED_TEST(KeyedLimiterTest, SweepDropsOnlyFullBuckets) {
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(10)}};
  ASSERT_TRUE(keyed.try_acquire_at("a", t0, 10).allowed());  // Empty until t0 + 1 s.
  ASSERT_TRUE(keyed.try_acquire_at("b", t0, 1).allowed());   // Full again at t0 + 100 ms.
  EXPECT_EQ(keyed.sweep(t0 + milliseconds(500)), 1u);
  EXPECT_EQ(keyed.stats().keys, 1u);
  EXPECT_EQ(keyed.try_acquire_at("a", t0 + milliseconds(500)).verdict(), Verdict::Allowed);
  EXPECT_EQ(keyed.try_acquire_at("a", t0 + milliseconds(500), 5).verdict(), Verdict::Denied);
  EXPECT_EQ(keyed.sweep(t0 + seconds(10)), 1u);
  EXPECT_EQ(keyed.stats().keys, 0u);
  EXPECT_EQ(keyed.stats().lossless_drops, 2u);
}

// Two limited keys fill a limiter of two; a third arrives before either bucket is full.
template <class Rule>
struct Full {
  explicit Full(OverflowPolicy policy)
      : keyed{{.default_quota = Quota::per_second(2),
               .max_keys = 2,
               .overflow = policy,
               .shards = 1}} {
    EXPECT_TRUE(keyed.try_acquire_at("a", t0, 2).allowed());
    EXPECT_TRUE(keyed.try_acquire_at("b", t0 + milliseconds(100), 2).allowed());
  }
  // Reports whether `key` is still limited at `at` (its bucket was not reset).
  bool limited(std::string_view key, Instant at) {
    return keyed.peek_at(key, at, 2).verdict() == Verdict::Denied;
  }
  KeyedLimiter<std::string, Rule, ManualClock> keyed;
};

TYPED_TEST(KeyedLimiterTest, RejectNewKeysFailsClosedAndResetsNobody) {
  Full<TypeParam> f{OverflowPolicy::RejectNewKeys};
  const Decision d = f.keyed.try_acquire_at("c", t0 + milliseconds(200));
  // Not the key's quota but the table: a verdict of its own, counted.
  EXPECT_EQ(d.verdict(), Verdict::TooManyKeys);
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.retry_after(), milliseconds(800));  // When a's bucket is full and can go.
  EXPECT_TRUE(f.limited("a", t0 + milliseconds(200)));
  EXPECT_TRUE(f.limited("b", t0 + milliseconds(200)));
  EXPECT_EQ(f.keyed.stats().overflow_decisions, 1u);
  EXPECT_EQ(f.keyed.stats().too_many_keys, 1u);
  // Once a's bucket is full, c takes its place without any loss.
  EXPECT_TRUE(f.keyed.try_acquire_at("c", t0 + seconds(1)).allowed());
  EXPECT_EQ(f.keyed.stats().lossless_drops, 1u);
  EXPECT_TRUE(f.limited("b", t0 + seconds(1)));
}

TYPED_TEST(KeyedLimiterTest, AdmitUntrackedFailsOpenAndResetsNobody) {
  Full<TypeParam> f{OverflowPolicy::AdmitUntracked};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(f.keyed.try_acquire_at("c", t0 + milliseconds(200), 2).allowed());
  }
  EXPECT_EQ(f.keyed.stats().keys, 2u);
  EXPECT_EQ(f.keyed.stats().overflow_decisions, 5u);
  EXPECT_EQ(f.keyed.stats().too_many_keys, 0u);
  EXPECT_TRUE(f.limited("a", t0 + milliseconds(200)));
  EXPECT_TRUE(f.limited("b", t0 + milliseconds(200)));
}

TYPED_TEST(KeyedLimiterTest, SharedOverflowGivesNewKeysOneKeysWorthTogether) {
  Full<TypeParam> f{OverflowPolicy::SharedOverflow};
  const Instant at = t0 + milliseconds(200);
  EXPECT_TRUE(f.keyed.try_acquire_at("c", at).allowed());
  EXPECT_TRUE(f.keyed.try_acquire_at("d", at).allowed());
  EXPECT_EQ(f.keyed.try_acquire_at("e", at).verdict(), Verdict::Denied);  // Burst 2, shared.
  EXPECT_TRUE(f.limited("a", at));
  EXPECT_TRUE(f.limited("b", at));
}

TYPED_TEST(KeyedLimiterTest, EvictingTheLeastRecentlyUsedKeyIsTheOnlyPolicyThatResets) {
  Full<TypeParam> f{OverflowPolicy::EvictLeastRecentlyUsed};
  const Instant at = t0 + milliseconds(200);
  (void)f.keyed.peek_at("a", at);  // Peeks do not count as use.
  EXPECT_TRUE(f.keyed.try_acquire_at("c", at).allowed());
  EXPECT_EQ(f.keyed.stats().forced_evictions, 1u);
  EXPECT_EQ(f.keyed.stats().keys, 2u);
  // One of a and b lost its state, and comes back with a full bucket: the documented reset.
  const int reset = (f.limited("a", at) ? 0 : 1) + (f.limited("b", at) ? 0 : 1);
  EXPECT_EQ(reset, 1);
}

TYPED_TEST(KeyedLimiterTest, KeysGetTheirOwnQuotasByOverrideOrResolver) {
  std::atomic<int> resolved{0};
  typename TestFixture::Keyed keyed{
      {.default_quota = Quota::per_second(2), .resolver = [&](std::string_view key) {
         resolved.fetch_add(1);
         return key.starts_with("vip:") ? std::optional<Quota>(Quota::per_second(5)) : std::nullopt;
       }}};
  EXPECT_EQ(keyed.peek_at("vip:ann", t0, 0).remaining(), 5u);
  EXPECT_TRUE(keyed.try_acquire_at("vip:ann", t0, 5).allowed());
  EXPECT_TRUE(keyed.try_acquire_at("bob", t0, 2).allowed());
  EXPECT_EQ(keyed.try_acquire_at("bob", t0).verdict(), Verdict::Denied);
  const int calls = resolved.load();
  EXPECT_EQ(keyed.try_acquire_at("vip:ann", t0).verdict(), Verdict::Denied);
  EXPECT_EQ(resolved.load(), calls) << "resolved once, when the key's state was created";
  EXPECT_EQ(keyed.quota_of("vip:ann"), Quota::per_second(5));
  EXPECT_EQ(keyed.quota_of("bob"), Quota::per_second(2));
  EXPECT_EQ(resolved.load(), calls) << "quota_of asks the resolver only for keys without state";
  // An override wins over the resolver, now (remaining permits kept) and when state is new.
  ASSERT_TRUE(keyed.set_quota_at("bob", Quota::per_second(20), t0));
  EXPECT_EQ(keyed.peek_at("bob", t0, 0).remaining(), 0u);
  EXPECT_EQ(keyed.peek_at("bob", t0 + milliseconds(50), 0).remaining(), 1u);  // 20/s refill.
  // bob has its own quota, so it keeps its state (and its room) when its bucket is full.
  EXPECT_EQ(keyed.sweep(t0 + seconds(5)), 1u);
  EXPECT_EQ(keyed.stats().keys, 1u);
  EXPECT_EQ(keyed.peek_at("bob", t0 + seconds(5), 0).remaining(), 20u);
  EXPECT_EQ(keyed.quota_of("bob"), Quota::per_second(20));
  // Taken back, it has the resolver's quota again (the default), its permits capped.
  keyed.clear_quota_at("bob", t0 + seconds(5));
  EXPECT_EQ(keyed.quota_of("bob"), Quota::per_second(2));
  EXPECT_EQ(keyed.peek_at("bob", t0 + seconds(5), 0).remaining(), 2u);
  EXPECT_EQ(keyed.sweep(t0 + seconds(6)), 1u);
}

TYPED_TEST(KeyedLimiterTest, PeekingCreatesNothingNotEvenATier) {
  // A resolver that gives every key a quota of its own: 300 distinct quotas, more than fit.
  typename TestFixture::Keyed keyed{
      {.default_quota = Quota::per_second(1), .resolver = [](std::string_view key) {
         return std::optional<Quota>(Quota::per_second(2 + key.size()));
       }}};
  std::string key = "k";
  for (int i = 0; i < 300; ++i, key += 'x') {
    EXPECT_EQ(keyed.peek_at(key, t0, 0).remaining(), 2 + key.size()) << key.size();
    EXPECT_EQ(keyed.quota_of(key), Quota::per_second(2 + key.size()));
  }
  // Taking back a quota a key does not have does nothing either.
  keyed.clear_quota_at("k", t0);
  keyed.clear_quota_at(key, t0);
  EXPECT_EQ(keyed.stats().keys, 0u);
  EXPECT_EQ(keyed.stats().tier_overflows, 0u);
  // Every tier is still free: 255 keys can have a quota of their own.
  for (int i = 0; i < 255; ++i) {
    ASSERT_TRUE(
        keyed.set_quota_at(user(i), Quota::per_hour(static_cast<std::uint64_t>(i + 1)), t0));
  }
}

TYPED_TEST(KeyedLimiterTest, KeysWithTheirOwnQuotaStayWithinMaxKeys) {
  for (const OverflowPolicy policy :
       {OverflowPolicy::RejectNewKeys, OverflowPolicy::EvictLeastRecentlyUsed}) {
    typename TestFixture::Keyed keyed{
        {.default_quota = Quota::per_second(1), .max_keys = 10, .overflow = policy}};
    int kept = 0;
    std::string last_error;
    for (int i = 0; i < 1'000'000; ++i) {
      const Result<void> r = keyed.set_quota_at(user(i), Quota::per_second(5), t0);
      if (r) {
        ++kept;
      } else if (last_error.empty()) {
        last_error = r.error().message();
      }
    }
    EXPECT_EQ(kept, 10) << to_string(policy);
    EXPECT_EQ(keyed.stats().keys, 10u);
    EXPECT_NE(last_error.find("\"user:000010\": no room"), std::string::npos) << last_error;
    EXPECT_LE(keyed.stats().bytes, 32u * 16) << "one table of at most 16 slots";
    // Nothing can push them out, and a new key meets a full table.
    EXPECT_EQ(keyed.try_acquire_at("new", t0).verdict(), Verdict::TooManyKeys);
    EXPECT_EQ(keyed.try_acquire_at("new", t0).retry_after(), kNever) << "no key can be dropped";
    EXPECT_EQ(keyed.sweep(t0 + seconds(60)), 0u);
    EXPECT_EQ(keyed.quota_of(user(3)), Quota::per_second(5));
    // Taking one back makes room.
    keyed.clear_quota_at(user(3), t0);
    EXPECT_TRUE(keyed.try_acquire_at("new", t0 + seconds(60)).allowed());
    EXPECT_EQ(keyed.quota_of(user(3)), Quota::per_second(1));
  }
}

TYPED_TEST(KeyedLimiterTest, TooManyDistinctQuotasIsAnErrorNamingTheKey) {
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(1)}};
  for (int i = 2; i <= 256; ++i) {
    ASSERT_TRUE(keyed.set_quota_at(user(i), Quota::per_second(static_cast<std::uint64_t>(i)), t0));
  }
  const Result<void> r = keyed.set_quota_at("k257", Quota::per_second(257), t0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("\"k257\""), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("257"), std::string::npos);
}

TYPED_TEST(KeyedLimiterTest, LongEmptyAndLookAlikeKeysAreDistinct) {
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(1), .shards = 1}};
  const std::string long_a(40, 'x');
  std::string long_b = long_a;
  long_b.back() = 'y';  // Differs only after the inline 16 bytes.
  for (const std::string& key : {std::string(), std::string(16, 'x'), long_a, long_b}) {
    EXPECT_TRUE(keyed.try_acquire_at(key, t0).allowed()) << "'" << key << "'";
    EXPECT_EQ(keyed.try_acquire_at(key, t0).verdict(), Verdict::Denied) << "'" << key << "'";
  }
  EXPECT_EQ(keyed.stats().keys, 4u);
  EXPECT_EQ(keyed.sweep(t0 + seconds(2)), 4u);  // Frees the out-of-line keys (ASan checks).
}

TYPED_TEST(KeyedLimiterTest, KeysDifferingInAnyOneByteAreDistinct) {
  // Keys are compared as words read with overlapping loads up to 16 bytes and as bytes beyond:
  // every length from 0 to 40, and each key of that length with any one byte changed.
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(1), .shards = 1}};
  std::vector<std::string> all;
  for (std::size_t n = 0; n <= 40; ++n) {
    all.emplace_back(n, 'a');
    for (std::size_t i = 0; i < n; ++i) {
      all.emplace_back(n, 'a');
      all.back()[i] = 'b';
    }
  }
  for (const std::string& key : all) {
    ASSERT_TRUE(keyed.try_acquire_at(key, t0).allowed()) << "'" << key << "' shared a bucket";
  }
  for (const std::string& key : all) {
    ASSERT_EQ(keyed.try_acquire_at(key, t0).verdict(), Verdict::Denied) << "'" << key << "'";
  }
  EXPECT_EQ(keyed.stats().keys, all.size());
}

TYPED_TEST(KeyedLimiterTest, AStreamOfNewKeysNeverResetsALimitedKey) {
  // 200,000 distinct keys through room for 1,000 under the fail-closed policy: the limited keys
  // keep their state and memory stays at the bound.
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(10), .max_keys = 1000}};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(keyed.try_acquire_at(user(i), t0, 10).allowed());
  for (int i = 10; i < 200'000; ++i) (void)keyed.try_acquire_at(user(i), t0 + Nanos{i});
  for (int i = 0; i < 10; ++i) {
    // Empty until t0 + 1 s, so not one permit back at t0 + 50 ms.
    EXPECT_EQ(keyed.try_acquire_at(user(i), t0 + milliseconds(50)).verdict(), Verdict::Denied)
        << user(i) << " was reset";
  }
  const KeyedLimiterStats stats = keyed.stats();
  EXPECT_LE(stats.keys, 1000u);
  EXPECT_EQ(stats.forced_evictions, 0u);
  EXPECT_GT(stats.overflow_decisions, 100'000u);
  // Full tables of 32-byte slots at most 3/4 loaded (plus one slot a shard): about 43 bytes a key.
  EXPECT_LE(stats.bytes, 1000u * 32u * 4u / 3u + 64u * 32u);
}

TYPED_TEST(KeyedLimiterTest, ConcurrentCallersAtOneInstantGetExactlyTheBurstPerKey) {
  // The origin story per key: 8 workers x 40 calls on 4 keys at one instant, burst 10.
  typename TestFixture::Keyed keyed{{.default_quota = Quota::per_second(10), .shards = 2}};
  const auto report =
      testkit::run<int>({.workers = 8, .name = "keyed burst"}, [&](testkit::Worker<int>& w) {
        for (int i = 0; i < 40 && w.keep_going(); ++i) {
          const int key = (w.index() + i) % 4;
          w.step("try_acquire_at",
                 [&] { return keyed.try_acquire_at(user(key), t0).allowed() ? key : -1; });
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  std::map<int, int> admitted;
  for (const auto& op : report.history) {
    if (op.result && *op.result >= 0) ++admitted[*op.result];
  }
  EXPECT_EQ(admitted, (std::map<int, int>{{0, 10}, {1, 10}, {2, 10}, {3, 10}}));
}

// Keys that are not strings: an IPv4 address as an integer, an IPv6 address as 16 bytes.
TEST(KeyedLimiterKeysTest, IntegerKeysDropLosslesslyAsStringKeysDo) {
  const Quota quota = Quota::per_second(10);
  KeyedLimiter<std::uint32_t, TokenBucketRule, ManualClock> keyed{
      {.default_quota = quota, .max_keys = 64, .shards = 4, .hash_seed = 20261128}};
  const internal::TokenBucket::Params params = internal::TokenBucket::params(quota);
  std::map<std::uint32_t, double> model;
  std::mt19937_64 rng(5);
  Instant now = t0;
  for (int i = 0; i < 50'000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 40'000'000)};
    const auto address = static_cast<std::uint32_t>(0x0a000000u + rng() % 3000);  // 10.0.x.y
    const std::uint64_t cost = rng() % 4;
    const auto it = model.try_emplace(address, internal::TokenBucket::kFull).first;
    const internal::TokenBucket::Step want =
        internal::TokenBucket::acquire(it->second, now, cost, params);
    it->second = want.state;
    ASSERT_EQ(keyed.try_acquire_at(address, now, cost), want.decision) << "call " << i;
  }
  EXPECT_GT(keyed.stats().lossless_drops, 10'000u);
  EXPECT_EQ(keyed.stats().overflow_decisions, 0u);
  EXPECT_EQ(keyed.stats().bytes, keyed.stats().bytes / 32 * 32) << "no key on the heap";
}

TEST(KeyedLimiterKeysTest, AddressKeysAreTheirBytesAndErrorsNameThem) {
  using Ipv6 = std::array<std::uint8_t, 16>;
  std::vector<Ipv6> resolved;
  KeyedLimiter<Ipv6, GcraRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(1), .resolver = [&](const Ipv6& address) {
         resolved.push_back(address);
         return address[0] == 0xfd ? std::optional<Quota>(Quota::per_second(3)) : std::nullopt;
       }}};
  Ipv6 a{0x20, 0x01, 0x0d, 0xb8};
  Ipv6 b = a;
  b[15] = 1;  // Differs in the last byte only.
  Ipv6 local{0xfd};
  EXPECT_TRUE(keyed.try_acquire_at(a, t0).allowed());
  EXPECT_EQ(keyed.try_acquire_at(a, t0).verdict(), Verdict::Denied);
  EXPECT_TRUE(keyed.try_acquire_at(b, t0).allowed());
  EXPECT_TRUE(keyed.try_acquire_at(local, t0, 3).allowed());  // Its tier: 3 a second.
  EXPECT_EQ(resolved, (std::vector<Ipv6>{a, b, local}));
  for (int i = 2; i <= 255; ++i) {  // With the resolver's 3 a second: 255 quotas.
    ASSERT_TRUE(keyed.set_quota_at(Ipv6{static_cast<std::uint8_t>(i)},
                                   Quota::per_second(static_cast<std::uint64_t>(i) + 10), t0));
  }
  const Result<void> r = keyed.set_quota_at(b, Quota::per_minute(7), t0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("0x20010db8000000000000000000000001"), std::string::npos)
      << r.error().message();

  KeyedLimiter<std::uint64_t, GcraRule, ManualClock> by_id{{.default_quota = Quota::per_second(1)}};
  for (std::uint64_t i = 0; i < 255; ++i) {
    ASSERT_TRUE(by_id.set_quota_at(i, Quota::per_second(i + 2), t0));
  }
  const Result<void> e =
      by_id.set_quota_at(18'446'744'073'709'551'615ULL, Quota::per_minute(7), t0);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("key 18446744073709551615:"), std::string::npos)
      << e.error().message();
}

// Adversarial report 2026-12, D7: with every key's room taken by a key at the latest instant, a
// new key at the earliest instant was told a negative wait (signed overflow under UBSan).
TEST(KeyedLimiterOverflowTest, WaitsBetweenTheEndsOfTheRangeArePositiveAndFinite) {
  KeyedLimiter<std::string, GcraRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(10), .max_keys = 1}};
  const Instant latest{Nanos{internal::kTimeLimit}};
  const Instant earliest{Nanos{-internal::kTimeLimit}};
  ASSERT_TRUE(keyed.try_acquire_at("a", latest).allowed());
  const Decision d = keyed.try_acquire_at("b", earliest);
  EXPECT_EQ(d.verdict(), Verdict::TooManyKeys);
  EXPECT_EQ(d.retry_after(), internal::kLongestWait) << "2^63 ns away: the longest finite wait";
}

// D20: a shard count beyond any table is clamped, not passed to std::bit_ceil (undefined).
TEST(KeyedLimiterOptionsTest, AnyShardCountIsClampedToTheRoom) {
  KeyedLimiter<std::string, GcraRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(10), .max_keys = 2, .shards = SIZE_MAX}};
  // Two shards of one key each (the room bounds the shards): which key lands where depends on
  // the seeded hash, so count rather than name them.
  int admitted = 0;
  for (int i = 0; i < 50; ++i) {
    admitted += keyed.try_acquire_at("k" + std::to_string(i), Instant{}).allowed() ? 1 : 0;
  }
  EXPECT_GE(admitted, 1);
  EXPECT_LE(admitted, 2);
  EXPECT_LE(keyed.stats().keys, 2u);
}

template <class Rule>
class KeyedRulesTest : public testing::Test {
 protected:
  using Keyed = KeyedLimiter<std::string, Rule, ManualClock>;
};
using AllRules = testing::Types<GcraRule, TokenBucketRule, FixedWindowRule, SlidingLogRule,
                                SlidingCounterRule, EnvoyFixedWindowRule>;
TYPED_TEST_SUITE(KeyedRulesTest, AllRules);

TYPED_TEST(KeyedRulesTest, EachKeyDecidesAsItsOwnLimiter) {
  const Quota quota = Quota::per_second(10);
  typename TestFixture::Keyed keyed{{.default_quota = quota, .max_keys = 100}};
  UnboundedModel<TypeParam> model;
  using Limiter = typename LimiterFor<TypeParam>::Type;
  std::mt19937_64 rng(3);
  Instant now = t0;
  for (int i = 0; i < 3000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
    const std::uint64_t cost = rng() % 25 == 0 ? 11 : rng() % 4;  // 11: above the limit.
    const std::string key = rng() % 4 != 0 ? "hot" : "cold";
    const Decision got = keyed.try_acquire_at(key, now, cost);
    ASSERT_EQ(got, model.try_acquire_at(key, quota, now, cost)) << "call " << i << " on " << key;
  }
  if constexpr (!std::is_void_v<Limiter>) {
    // And the model is the rule's own limiter, call for call.
    Limiter limiter{quota};
    UnboundedModel<TypeParam> again;
    Instant at = t0;
    for (int i = 0; i < 3000; ++i) {
      at += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
      const std::uint64_t cost = rng() % 4;
      ASSERT_EQ(limiter.try_acquire_at(at, cost), again.try_acquire_at("k", quota, at, cost))
          << "call " << i;
    }
  }
  EXPECT_EQ(keyed.stats().keys, 2u);
}

TYPED_TEST(KeyedRulesTest, DroppingFullStateNeverChangesADecision) {
  const Quota quota = *Quota::make(milliseconds(100), 3, 3);
  for (const std::size_t shards : {1u, 4u}) {
    typename TestFixture::Keyed keyed{
        {.default_quota = quota, .max_keys = 64, .shards = shards, .hash_seed = 20261207}};
    UnboundedModel<TypeParam> model;
    std::mt19937_64 rng(11);
    Instant now = t0;
    for (int i = 0; i < 100'000; ++i) {
      // About 50 calls a second over 5,000 keys, each key's state full again within 200 ms of
      // its last call: far more keys than room, never more than the room busy at once.
      now += Nanos{static_cast<std::int64_t>(rng() % 40'000'000)};
      const std::string key = user(static_cast<int>(rng() % 5000));
      const std::uint64_t cost = rng() % 50 == 0 ? 4 : rng() % 3;  // 4: above the limit.
      ASSERT_EQ(keyed.try_acquire_at(key, now, cost), model.try_acquire_at(key, quota, now, cost))
          << "call " << i << " on " << key << " with " << shards << " shard(s)";
      if (i % 1000 == 999) (void)keyed.sweep(now);
    }
    const KeyedLimiterStats stats = keyed.stats();
    EXPECT_EQ(stats.overflow_decisions, 0u) << "the trace never needed the overflow policy";
    EXPECT_GT(stats.lossless_drops, 50'000u);
    EXPECT_LE(stats.keys, 64u);
  }
}

TYPED_TEST(KeyedRulesTest, AFullLimiterHoldsNewKeysOffAndResetsNobody) {
  const Quota quota = Quota::per_second(2);
  typename TestFixture::Keyed keyed{{.default_quota = quota, .max_keys = 2, .shards = 1}};
  ASSERT_TRUE(keyed.try_acquire_at("a", t0, 2).allowed());
  ASSERT_TRUE(keyed.try_acquire_at("b", t0 + milliseconds(100), 2).allowed());
  const Decision d = keyed.try_acquire_at("c", t0 + milliseconds(200));
  EXPECT_EQ(d.verdict(), Verdict::TooManyKeys);
  EXPECT_GT(d.retry_after(), Nanos::zero());
  EXPECT_LT(d.retry_after(), kNever);
  for (const char* key : {"a", "b"}) {
    EXPECT_FALSE(keyed.peek_at(key, t0 + milliseconds(200), 1).allowed()) << key;
  }
  EXPECT_EQ(keyed.stats().too_many_keys, 1u);
}

TEST(KeyedSlidingLogTest, LogsAreCountedInBytesAndFreedWithTheirKeys) {
  const Quota quota = Quota::per_second(100);
  KeyedLimiter<std::string, SlidingLogRule, ManualClock> keyed{
      {.default_quota = quota, .max_keys = 100, .overflow = OverflowPolicy::AdmitUntracked}};
  const std::uint64_t empty = keyed.stats().bytes;
  // 10,000 keys, each admitting its whole limit one permit at a time: only the first 100 keep a
  // log; the others are decided as fresh keys, without state.
  for (int k = 0; k < 10'000; ++k) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(keyed.try_acquire_at(user(k), t0 + Nanos{i}, 1).allowed()) << k << " " << i;
    }
    ASSERT_EQ(keyed.try_acquire_at(user(k), t0 + Nanos{100}, 1).allowed(), k >= 100) << k;
  }
  const KeyedLimiterStats full = keyed.stats();
  EXPECT_EQ(full.keys, 100u);
  // Each log: at most 2 x 100 entries of 24 bytes, and the vector's slack, and itself.
  EXPECT_GT(full.bytes, empty + 100u * 100 * 24);
  EXPECT_LE(full.bytes, 64u * 256 + 100u * (4 * 200 * 24 + 128));
  // Once their windows have passed, the logs go with their keys (ASan checks the frees).
  EXPECT_EQ(keyed.sweep(t0 + seconds(2)), 100u);
  EXPECT_EQ(keyed.stats().keys, 0u);
  EXPECT_LE(keyed.stats().bytes, 64u * 256) << "only the table is left";
}

TEST(KeyedEnvoyWindowTest, LimitsGivenWithEachCallAreEachEnforced) {
  // More distinct limits than tiers could hold, each in its key as Envoy's own limits are.
  KeyedLimiter<std::string, EnvoyFixedWindowRule, ManualClock> keyed{
      {.default_quota = Quota::per_second(1), .max_keys = 10'000}};
  UnboundedModel<EnvoyFixedWindowRule> model;
  std::mt19937_64 rng(5);
  Instant now = t0;
  for (int i = 0; i < 50'000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 2'000'000)};
    const auto limit = static_cast<std::uint64_t>(1 + rng() % 1000);
    const Quota quota = *Quota::make(seconds(1), limit, limit);
    const std::string key = std::to_string(limit) + "|" + user(static_cast<int>(rng() % 3));
    const std::uint64_t cost = rng() % 3;
    ASSERT_EQ(keyed.try_acquire_with_quota_at(key, quota, now, cost),
              model.try_acquire_at(key, quota, now, cost))
        << "call " << i << " on " << key;
  }
  EXPECT_EQ(keyed.stats().tier_overflows, 0u);
  // Denied hits count: a client that keeps trying stays over until the window ends.
  const Quota two = *Quota::make(seconds(1), 2, 2);
  const Instant w{seconds(5000)};
  EXPECT_TRUE(keyed.try_acquire_with_quota_at("two", two, w, 2).allowed());
  EXPECT_FALSE(keyed.try_acquire_with_quota_at("two", two, w + milliseconds(1)).allowed());
  EXPECT_EQ(keyed.peek_with_quota_at("two", two, w + milliseconds(2), 0).remaining(), 0u);
  // How far past the limit the count is: 3 of 2, then 6 of 2.
  EXPECT_EQ(keyed.peek_with_quota_at("two", two, w + milliseconds(2), 0).debt(), 1u);
  EXPECT_EQ(keyed.try_acquire_with_quota_at("two", two, w + milliseconds(3), 3).debt(), 4u);
  EXPECT_TRUE(keyed.try_acquire_with_quota_at("two", two, w + seconds(1)).allowed());
  // The limiters that count only what they admit are never past empty.
  KeyedLimiter<std::string, FixedWindowRule, ManualClock> fixed{
      {.default_quota = Quota::per_second(1), .max_keys = 8}};
  EXPECT_TRUE(fixed.try_acquire_at("k", w).allowed());
  EXPECT_EQ(fixed.try_acquire_at("k", w, 1).debt(), 0u);
}

}  // namespace
}  // namespace floodgate
