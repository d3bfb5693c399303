#include "floodgate/http/rate_limit_headers.h"

#include <gtest/gtest.h>

#include "floodgate/limiters/gcra.h"

namespace floodgate::http {
namespace {

using namespace std::chrono_literals;

TEST(RateLimitHeadersTest, WaitsRoundUpToWholeSeconds) {
  EXPECT_EQ(ceil_seconds(Nanos::zero()), 0);
  EXPECT_EQ(ceil_seconds(-5ns), 0);
  EXPECT_EQ(ceil_seconds(1ns), 1);
  EXPECT_EQ(ceil_seconds(10ms), 1);
  EXPECT_EQ(ceil_seconds(1s), 1);
  EXPECT_EQ(ceil_seconds(1s + 1ns), 2);
  EXPECT_EQ(ceil_seconds(kNever), std::nullopt);  // No overflow on "never".
  EXPECT_EQ(ceil_seconds(kNever - 1ns), 9'223'372'037);
}

TEST(RateLimitHeadersTest, RetryAfterIsNeverZeroForADenialAndAbsentForNever) {
  const Decision admitted(Verdict::Allowed, 10, 5, 1, Nanos::zero(), 100ms);
  EXPECT_EQ(retry_after(admitted), std::nullopt);
  const Decision soon(Verdict::Denied, 10, 0, 1, 10ms, 200ms);
  EXPECT_EQ(retry_after(soon), "1");  // 10 ms is 1 s, never 0.
  const Decision later(Verdict::Denied, 10, 0, 1, 2500ms, 3s);
  EXPECT_EQ(retry_after(later), "3");
  const Decision never(Verdict::ExceedsBurst, 10, 10, 1, kNever, Nanos::zero());
  EXPECT_EQ(retry_after(never), std::nullopt);
}

TEST(RateLimitHeadersTest, PolicyItemsAdvertiseTheQuotaInWholeSeconds) {
  EXPECT_EQ(policy_item("client", Quota::per_second(100)), R"("client";q=100;w=1)");
  EXPECT_EQ(policy_item("daily", Quota::per(std::chrono::hours(24), 1000)),
            R"("daily";q=1000;w=86400)");
  EXPECT_EQ(policy_item("burst", Quota::per_second(100).with_burst(20)),
            R"("burst";q=100;w=1)");  // The draft has no burst.
  EXPECT_EQ(policy_item("fast", *Quota::parse("10/500ms")), R"("fast";q=20;w=1)");
  EXPECT_EQ(policy_item("odd", *Quota::parse("7/1500ms")), R"("odd";q=9;w=2)");
  EXPECT_EQ(policy_item("tiny", *Quota::parse("1/1ns")), R"("tiny";q=1000000000;w=1)");
}

TEST(RateLimitHeadersTest, TheBurstWindowKeepsRemainingWithinTheQuotaAdvertised) {
  EXPECT_EQ(policy_item("ip", Quota::per_second(5).with_burst(10), PolicyWindow::Burst),
            R"("ip";q=10;w=2)");
  EXPECT_EQ(policy_item("ip", Quota::per_second(5).with_burst(10)), R"("ip";q=5;w=1)");
  // A burst window that is not whole seconds is rounded up: never a rate above the quota's.
  EXPECT_EQ(policy_item("fast", *Quota::parse("10/500ms"), PolicyWindow::Burst),
            R"("fast";q=10;w=1)");
  EXPECT_EQ(policy_item("odd", Quota::per_second(3).with_burst(7), PolicyWindow::Burst),
            R"("odd";q=7;w=3)");
  EXPECT_EQ(policy_item("day", Quota::per(std::chrono::hours(24), 1000), PolicyWindow::Burst),
            R"("day";q=1000;w=86400)");
  // The longest a quota can take to refill (73 years): whole seconds, exact.
  EXPECT_EQ(policy_item("huge", Quota::per(std::chrono::hours(24 * 365), 1).with_burst(73),
                        PolicyWindow::Burst),
            R"("huge";q=73;w=2302128000)");
  // r never exceeds q: every decision of a full bucket, drained.
  GcraLimiter<ManualClock> limiter(Quota::per_second(5).with_burst(10));
  for (int i = 0; i < 12; ++i) {
    const Decision d = limiter.try_acquire();
    EXPECT_LE(d.remaining(), 10u);
  }
}

TEST(RateLimitHeadersTest, SeveralLimitsAreWrittenAsOneFieldEach) {
  GcraLimiter<ManualClock> global(Quota::per_second(100));
  GcraLimiter<ManualClock> ip(Quota::per_second(5).with_burst(10));
  for (int i = 0; i < 10; ++i) (void)ip.try_acquire();
  const LimitState limits[] = {{"global", Quota::per_second(100), global.peek(0)},
                               {"ip", Quota::per_second(5).with_burst(10), ip.peek(1)}};
  const HeaderFields refused = header_fields(limits, 1);
  EXPECT_EQ(refused.policy, R"("global";q=100;w=1, "ip";q=5;w=1)");
  EXPECT_EQ(refused.limit, R"("global";r=100;t=0, "ip";r=0;t=2)");
  EXPECT_EQ(refused.retry_after, "1");
  const HeaderFields admitted = header_fields(limits, std::nullopt, PolicyWindow::Burst);
  EXPECT_EQ(admitted.policy, R"("global";q=100;w=1, "ip";q=10;w=2)");
  EXPECT_FALSE(admitted.retry_after);
}

TEST(RateLimitHeadersTest, LimitItemsFromRealDecisions) {
  GcraLimiter<ManualClock> limiter(Quota::per_second(100).with_burst(20));
  Decision d = limiter.try_acquire();
  EXPECT_EQ(limit_item("client", d), R"("client";r=19;t=1)");
  for (int i = 0; i < 19; ++i) d = limiter.try_acquire();
  EXPECT_EQ(limit_item("client", d), R"("client";r=0;t=1)");
  d = limiter.try_acquire();
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(retry_after(d), "1");
  EXPECT_EQ(join({limit_item("client", d), limit_item("global", limiter.peek(0))}),
            R"("client";r=0;t=1, "global";r=0;t=1)");
}

TEST(RateLimitHeadersTest, NamesAreStructuredFieldStrings) {
  EXPECT_EQ(sf_string("plain"), "\"plain\"");
  EXPECT_EQ(sf_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(sf_string("caf\xc3\xa9\n"), "\"caf???\"");
}

}  // namespace
}  // namespace floodgate::http
