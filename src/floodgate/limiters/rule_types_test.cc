// The GCRA and token-bucket rules as a store of many states uses them: a state that
// `is_full` decides everything as a fresh state does, `full_from` is the first such instant,
// and both hold at instants where a double of nanoseconds is coarse.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/limiters/internal/token_bucket_rule.h"
#include "floodgate/testing/waiting.h"

namespace floodgate {
namespace {

template <class Rule>
class RuleTypeTest : public testing::Test {};
using Rules = testing::Types<internal::Gcra, internal::TokenBucket>;
TYPED_TEST_SUITE(RuleTypeTest, Rules);

// A state the rule could hold at `t`: a bucket emptied some time around `t`, as a run of
// admissions from a full state leaves it.
template <class Rule>
typename Rule::State state_near(std::int64_t t, const Quota& quota, std::mt19937_64& rng) {
  const typename Rule::Params p = Rule::params(quota);
  typename Rule::State state = Rule::kFull;
  const std::int64_t start = t - static_cast<std::int64_t>(rng() % 3'000'000'000ULL);
  const int calls = static_cast<int>(rng() % 40);
  std::int64_t now = start;
  for (int i = 0; i < calls; ++i) {
    now += static_cast<std::int64_t>(rng() % 200'000'000ULL);
    state = Rule::acquire(state, Instant{Nanos{now}}, 1 + rng() % 3, p).state;
  }
  return state;
}

TYPED_TEST(RuleTypeTest, AFullStateDecidesEverythingAsAFreshOne) {
  using Rule = TypeParam;
  std::mt19937_64 rng(20261128);
  const Quota quotas[] = {Quota::per_second(10), Quota::per_second(3).with_burst(7),
                          Quota::per(Nanos{999'999'937}, 13)};
  // Small instants, and instants near the limit where a double resolves 512 ns.
  const std::int64_t origins[] = {1'000'000'000'000LL, internal::kTimeLimit - 20'000'000'000LL};
  constexpr std::int64_t kSeconds5 = 5'000'000'000;
  int full_seen = 0;
  for (const Quota& quota : quotas) {
    const typename Rule::Params p = Rule::params(quota);
    for (const std::int64_t origin : origins) {
      for (int trial = 0; trial < 3000; ++trial) {
        const std::int64_t t = origin + static_cast<std::int64_t>(rng() % 4'000'000'000ULL);
        const typename Rule::State state = state_near<Rule>(t, quota, rng);
        const std::int64_t from = Rule::full_from(state, p);
        ASSERT_LT(from, internal::kTimeLimit - kSeconds5) << "the trials stay inside the range";
        ASSERT_TRUE(Rule::is_full(state, from, p)) << quota.to_string() << " trial " << trial;
        // The first instant, up to the double's resolution there (512 ns near the limit).
        const std::int64_t before = from - (origin > (std::int64_t{1} << 53) ? 1024 : 1);
        ASSERT_TRUE(from == -internal::kTimeLimit || !Rule::is_full(state, before, p))
            << "full_from is not the first instant: " << from << " for " << state;
        ASSERT_EQ(Rule::is_full(state, t, p), from <= t);
        full_seen += from <= t ? 1 : 0;
        // At the first full instant, just after, and long after.
        for (const std::int64_t later : {from, from + 1, from + 777, from + kSeconds5}) {
          const Instant at{Nanos{later}};
          ASSERT_TRUE(Rule::is_full(state, later, p)) << "not monotone";
          for (std::uint64_t cost = 0; cost <= quota.burst() + 1; ++cost) {
            const auto kept = Rule::acquire(state, at, cost, p);
            const auto fresh = Rule::acquire(Rule::kFull, at, cost, p);
            ASSERT_EQ(kept.decision, fresh.decision)
                << quota.to_string() << " trial " << trial << " cost " << cost;
            if (fresh.decision.allowed() && cost > 0) {
              ASSERT_TRUE(waiting_test::same_bits(kept.state, fresh.state)) << "cost " << cost;
            } else {
              ASSERT_TRUE(Rule::is_full(kept.state, later, p));
            }
          }
        }
      }
    }
  }
  EXPECT_GT(full_seen, 1000) << "the trials should also meet states already full";
}

TYPED_TEST(RuleTypeTest, TheFreshStateIsFullAtEveryInstant) {
  using Rule = TypeParam;
  const typename Rule::Params p = Rule::params(Quota::per_second(10));
  EXPECT_EQ(Rule::full_from(Rule::kFull, p), -internal::kTimeLimit);
  for (const std::int64_t t : {-internal::kTimeLimit, std::int64_t{0}, internal::kTimeLimit}) {
    EXPECT_TRUE(Rule::is_full(Rule::kFull, t, p)) << t;
  }
  // A bucket emptied at the last instant is never full again within the clock's range.
  const auto last = Instant{Nanos{internal::kTimeLimit}};
  const auto emptied = Rule::acquire(Rule::kFull, last, 10, p).state;
  EXPECT_FALSE(Rule::is_full(emptied, internal::kTimeLimit, p));
  EXPECT_GT(Rule::full_from(emptied, p), internal::kTimeLimit);
}

}  // namespace
}  // namespace floodgate
