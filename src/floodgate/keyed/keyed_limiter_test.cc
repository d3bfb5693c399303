// KeyedLimiter: per-key decisions equal GCRA's, dropping full buckets never changes a decision,
// each overflow policy does what it says, per-key quotas, and concurrent callers on many keys.
// Time is the caller's; workers record, the test thread decides.
#include "floodgate/keyed/keyed_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

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

// The reference: one GCRA state per key in an unbounded map.
class UnboundedModel {
 public:
  explicit UnboundedModel(const Quota& quota) : params_(GcraParams::from(quota)) {}
  Decision try_acquire_at(const std::string& key, Instant now, std::uint64_t cost) {
    const auto it = states_.try_emplace(key, kGcraFullState).first;
    const GcraStep step = gcra_acquire(it->second, now, cost, params_);
    it->second = step.state;
    return step.decision;
  }

 private:
  GcraParams params_;
  std::map<std::string, std::int64_t> states_;
};

TEST(KeyedLimiterTest, EachKeyDecidesAsItsOwnGcraLimiter) {
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(10), .max_keys = 100}};
  GcraLimiter<ManualClock> a{Quota::per_second(10)};
  GcraLimiter<ManualClock> b{Quota::per_second(10)};
  std::mt19937_64 rng(3);
  Instant now = t0;
  for (int i = 0; i < 2000; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 30'000'000)};
    const std::uint64_t cost = rng() % 4;
    const bool first = rng() % 4 != 0;  // A hot key and a cold one.
    const Decision want = (first ? a : b).try_acquire_at(now, cost);
    ASSERT_EQ(keyed.try_acquire_at(first ? "hot" : "cold", now, cost), want) << "call " << i;
  }
  EXPECT_EQ(keyed.stats().keys, 2u);
}

TEST(KeyedLimiterTest, DroppingFullBucketsNeverChangesADecision) {
  for (const std::size_t shards : {1u, 4u}) {
    const Quota quota = Quota::per_second(10);
    KeyedLimiter<ManualClock> keyed{{.default_quota = quota, .max_keys = 64, .shards = shards}};
    UnboundedModel model{quota};
    std::mt19937_64 rng(11);
    Instant now = t0;
    for (int i = 0; i < 200'000; ++i) {
      now += Nanos{static_cast<std::int64_t>(rng() % 40'000'000)};
      // 5000 keys, about 50 calls a second, each holding its key's bucket below full for at
      // most 300 ms: far more keys than room, but never more than the room busy at once.
      const std::string key = user(static_cast<int>(rng() % 5000));
      const std::uint64_t cost = rng() % 50 == 0 ? 12 : rng() % 4;  // 12: above the burst.
      ASSERT_EQ(keyed.try_acquire_at(key, now, cost), model.try_acquire_at(key, now, cost))
          << "call " << i << " on " << key << " with " << shards << " shard(s)";
      if (i % 1000 == 999) (void)keyed.sweep(now);
    }
    const KeyedLimiterStats stats = keyed.stats();
    EXPECT_EQ(stats.overflow_decisions, 0u) << "the trace never needed the overflow policy";
    EXPECT_GT(stats.lossless_drops, 100'000u);
    EXPECT_LE(stats.keys, 64u);
  }
}

TEST(KeyedLimiterTest, SweepDropsOnlyFullBuckets) {
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(10)}};
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
  KeyedLimiter<ManualClock> keyed;
};

TEST(KeyedLimiterTest, RejectNewKeysFailsClosedAndResetsNobody) {
  Full f{OverflowPolicy::RejectNewKeys};
  const Decision d = f.keyed.try_acquire_at("c", t0 + milliseconds(200));
  EXPECT_EQ(d.verdict(), Verdict::Denied);
  EXPECT_EQ(d.retry_after(), milliseconds(800));  // When a's bucket is full and can go.
  EXPECT_TRUE(f.limited("a", t0 + milliseconds(200)));
  EXPECT_TRUE(f.limited("b", t0 + milliseconds(200)));
  EXPECT_EQ(f.keyed.stats().overflow_decisions, 1u);
  // Once a's bucket is full, c takes its place without any loss.
  EXPECT_TRUE(f.keyed.try_acquire_at("c", t0 + seconds(1)).allowed());
  EXPECT_EQ(f.keyed.stats().lossless_drops, 1u);
  EXPECT_TRUE(f.limited("b", t0 + seconds(1)));
}

TEST(KeyedLimiterTest, AdmitUntrackedFailsOpenAndResetsNobody) {
  Full f{OverflowPolicy::AdmitUntracked};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(f.keyed.try_acquire_at("c", t0 + milliseconds(200), 2).allowed());
  }
  EXPECT_EQ(f.keyed.stats().keys, 2u);
  EXPECT_EQ(f.keyed.stats().overflow_decisions, 5u);
  EXPECT_TRUE(f.limited("a", t0 + milliseconds(200)));
  EXPECT_TRUE(f.limited("b", t0 + milliseconds(200)));
}

TEST(KeyedLimiterTest, SharedOverflowGivesNewKeysOneKeysWorthTogether) {
  Full f{OverflowPolicy::SharedOverflow};
  const Instant at = t0 + milliseconds(200);
  EXPECT_TRUE(f.keyed.try_acquire_at("c", at).allowed());
  EXPECT_TRUE(f.keyed.try_acquire_at("d", at).allowed());
  EXPECT_EQ(f.keyed.try_acquire_at("e", at).verdict(), Verdict::Denied);  // Burst 2, shared.
  EXPECT_TRUE(f.limited("a", at));
  EXPECT_TRUE(f.limited("b", at));
}

TEST(KeyedLimiterTest, EvictingTheLeastRecentlyUsedKeyIsTheOnlyPolicyThatResets) {
  Full f{OverflowPolicy::EvictLeastRecentlyUsed};
  const Instant at = t0 + milliseconds(200);
  (void)f.keyed.peek_at("a", at);  // Peeks do not count as use.
  EXPECT_TRUE(f.keyed.try_acquire_at("c", at).allowed());
  EXPECT_EQ(f.keyed.stats().forced_evictions, 1u);
  EXPECT_EQ(f.keyed.stats().keys, 2u);
  // One of a and b lost its state, and comes back with a full bucket: the documented reset.
  const int reset = (f.limited("a", at) ? 0 : 1) + (f.limited("b", at) ? 0 : 1);
  EXPECT_EQ(reset, 1);
}

TEST(KeyedLimiterTest, KeysGetTheirOwnQuotasByOverrideOrResolver) {
  std::atomic<int> resolved{0};
  KeyedLimiter<ManualClock> keyed{
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
  // An override wins over the resolver, now (remaining permits kept) and when state is new.
  ASSERT_TRUE(keyed.set_quota_at("bob", Quota::per_second(20), t0));
  EXPECT_EQ(keyed.peek_at("bob", t0, 0).remaining(), 0u);
  EXPECT_EQ(keyed.peek_at("bob", t0 + milliseconds(50), 0).remaining(), 1u);  // 20/s refill.
  EXPECT_EQ(keyed.sweep(t0 + seconds(5)), 2u);
  EXPECT_EQ(keyed.peek_at("bob", t0 + seconds(5), 0).remaining(), 20u);
}

TEST(KeyedLimiterTest, TooManyDistinctQuotasIsAnErrorNamingTheKey) {
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(1)}};
  for (int i = 2; i <= 256; ++i) {
    ASSERT_TRUE(keyed.set_quota_at(user(i), Quota::per_second(static_cast<std::uint64_t>(i)), t0));
  }
  const Result<Quota> r = keyed.set_quota_at("k257", Quota::per_second(257), t0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("\"k257\""), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("257"), std::string::npos);
}

TEST(KeyedLimiterTest, LongEmptyAndLookAlikeKeysAreDistinct) {
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(1), .shards = 1}};
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

TEST(KeyedLimiterTest, AStreamOfNewKeysNeverResetsALimitedKey) {
  // 200,000 distinct keys through room for 1,000 under the fail-closed policy: the limited keys
  // keep their state and memory stays at the bound.
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(10), .max_keys = 1000}};
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

TEST(KeyedLimiterTest, ConcurrentCallersAtOneInstantGetExactlyTheBurstPerKey) {
  // The origin story per key: 8 workers x 40 calls on 4 keys at one instant, burst 10.
  KeyedLimiter<ManualClock> keyed{{.default_quota = Quota::per_second(10), .shards = 2}};
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

}  // namespace
}  // namespace floodgate
