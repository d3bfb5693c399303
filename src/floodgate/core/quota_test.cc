#include "floodgate/core/quota.h"

#include <gtest/gtest.h>

#include <string>

#include "floodgate/core/internal/format.h"

namespace floodgate {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(QuotaTest, BurstDefaultsToTheCount) {
  const Quota q = Quota::per_second(100);
  EXPECT_EQ(q.count(), 100u);
  EXPECT_EQ(q.period(), seconds(1));
  EXPECT_EQ(q.burst(), 100u);
  EXPECT_EQ(q.interval(), milliseconds(10));
}

TEST(QuotaTest, FactoriesNameTheirPeriods) {
  EXPECT_EQ(Quota::per_minute(6).interval(), seconds(10));
  EXPECT_EQ(Quota::per_hour(60).interval(), minutes(1));
  EXPECT_EQ(Quota::per(milliseconds(500), 5).interval(), milliseconds(100));
  EXPECT_EQ(Quota::per_second(100).with_burst(1).burst(), 1u);
}

TEST(QuotaTest, IntervalRoundsUpSoTheRateNeverExceedsTheQuota) {
  EXPECT_EQ(Quota::per_second(3).interval(), Nanos{333'333'334});
  EXPECT_EQ(Quota::per_second(1'000'000'000).interval(), Nanos{1});
  EXPECT_EQ(Quota::per_second(600'000'000).interval(), Nanos{2});
}

TEST(QuotaTest, MakeRejectsEachBrokenLimitWithTheValue) {
  EXPECT_EQ(Quota::make(seconds(1), 0, 1).error().message(),
            "quota 0 per 1s burst 1: rate must be at least 1 per period (got 0)");
  EXPECT_EQ(Quota::make(Nanos{0}, 5, 5).error().message(),
            "quota 5 per 0s burst 5: period must be positive (got 0s)");
  EXPECT_EQ(Quota::make(-seconds(1), 5, 5).error().message(),
            "quota 5 per -1s burst 5: period must be positive (got -1s)");
  EXPECT_EQ(Quota::make(seconds(1), 5, 0).error().message(),
            "quota 5 per 1s burst 0: burst must be at least 1 (got 0)");
  EXPECT_EQ(Quota::make(seconds(1), 2'000'000'000, 1).error().message(),
            "quota 2000000000 per 1s burst 1: rate must be at most 1 per nanosecond (got "
            "2000000000 per 1s)");
  EXPECT_EQ(Quota::make(hours(24 * 365), 1, 100).error().message(),
            "quota 1 per 365d burst 100: burst x interval must be at most 2^61 ns, about 73 years "
            "(got burst 100 x interval 365d)");
  EXPECT_FALSE(Quota::make(seconds(1), 1, ~std::uint64_t{0}).has_value());
  EXPECT_TRUE(Quota::make(seconds(1), 1, 1).has_value());
}

TEST(QuotaDeathTest, TrustedFactoriesAbortOnBrokenLimits) {
  EXPECT_DEATH((void)Quota::per_second(0), "rate must be at least 1 per period \\(got 0\\)");
  EXPECT_DEATH((void)Quota::per_second(10).with_burst(0), "burst must be at least 1");
}

struct ParseCase {
  std::string text;
  Nanos period;
  std::uint64_t count;
  std::uint64_t burst;
};

TEST(QuotaParseTest, AcceptsTheDocumentedForms) {
  const ParseCase cases[] = {
      {"100/s", seconds(1), 100, 100},
      {"  100 / s  ", seconds(1), 100, 100},
      {"5/min", minutes(1), 5, 5},
      {"5/m", minutes(1), 5, 5},
      {"1000/h burst 1", hours(1), 1000, 1},
      {"10/500ms burst 20", milliseconds(500), 10, 20},
      {"7/3d", hours(72), 7, 7},
      {"1/250us", Nanos{250'000}, 1, 1},
      {"1/10ns", Nanos{10}, 1, 1},
      {"3/2sec", seconds(2), 3, 3},
  };
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(c.text);
    Result<Quota> q = Quota::parse(c.text);
    ASSERT_TRUE(q.has_value()) << q.error().message();
    EXPECT_EQ(q->period(), c.period);
    EXPECT_EQ(q->count(), c.count);
    EXPECT_EQ(q->burst(), c.burst);
  }
}

TEST(QuotaParseTest, RejectsBadTextNamingTheTextTheRuleAndTheValue) {
  const std::pair<std::string, std::string> cases[] = {
      {"0/s", "quota \"0/s\": rate must be at least 1 per period (got 0)"},
      {"", "quota \"\": expected \"<count>/<period>\", e.g. \"100/s\" or \"10/500ms burst 20\""},
      {"abc/s", "quota \"abc/s\": count must be a whole number (got \"abc\")"},
      {"-5/s", "quota \"-5/s\": count must be a whole number (got \"-5\")"},
      {"100", "quota \"100\": expected \"/\" and a period after the count, e.g. \"100/s\""},
      {"100/", "quota \"100/\": expected a period unit after \"/\" (ns, us, ms, s, m, h or d)"},
      {"5/fortnight",
       "quota \"5/fortnight\": unknown period unit \"fortnight\" (use ns, us, ms, s, m, h or d)"},
      {"5/0s", "quota \"5/0s\": period must be positive (got 0s)"},
      {"10/s burst 0", "quota \"10/s burst 0\": burst must be at least 1 (got 0)"},
      {"10/s burst", "quota \"10/s burst\": expected a number after \"burst\""},
      {"10/s burst x", "quota \"10/s burst x\": burst must be a whole number (got \"x\")"},
      {"10/s bust 3",
       "quota \"10/s bust 3\": unexpected \"bust\" after the period (expected \"burst <n>\" or "
       "nothing)"},
      {"10/s burst 3 4", "quota \"10/s burst 3 4\": unexpected \"4\" after the burst"},
      {"99999999999999999999999/s",
       "quota \"99999999999999999999999/s\": count is out of range (got "
       "\"99999999999999999999999\")"},
      {"1/99999999999999999999h",
       "quota \"1/99999999999999999999h\": period is out of range (got "
       "\"99999999999999999999\")"},
      {"1/9999999999h",
       "quota \"1/9999999999h\": period is out of range (got \"9999999999h\"; at most "
       "about 292 years)"},
      {"2000000000/s",
       "quota \"2000000000/s\": rate must be at most 1 per nanosecond (got 2000000000 per 1s)"},
      {"4294967295/s burst 18446744073709551615",
       "quota \"4294967295/s burst 18446744073709551615\": rate must be at most 1 per "
       "nanosecond (got 4294967295 per 1s)"},
      {"1/s burst 18446744073709551615",
       "quota \"1/s burst 18446744073709551615\": burst x interval must be at most 2^61 ns, "
       "about 73 years (got burst 18446744073709551615 x interval 1s)"},
  };
  for (const auto& [text, message] : cases) {
    Result<Quota> q = Quota::parse(text);
    ASSERT_FALSE(q.has_value()) << text;
    EXPECT_EQ(q.error().message(), message);
  }
}

TEST(QuotaParseTest, MessagesEscapeBytesThatAreNotPrintable) {
  // A NUL or a control byte in the text must not cut the message short or reach a terminal raw.
  Result<Quota> q = Quota::parse(std::string("1/s\0junk", 8));
  ASSERT_FALSE(q.has_value());
  EXPECT_EQ(q.error().message(),
            "quota \"1/s\\x00junk\": unexpected \"\\x00junk\" after the period (expected \"burst "
            "<n>\" or nothing)");
}

TEST(QuotaParseTest, AFractionalPeriodIsNamedAsSuch) {
  Result<Quota> q = Quota::parse("10/0.5s");
  ASSERT_FALSE(q.has_value());
  EXPECT_EQ(q.error().message(),
            "quota \"10/0.5s\": the period must be a whole number of units (got \"10/0.5s\"); "
            "write a smaller unit, e.g. 500ms for 0.5s");
}

TEST(QuotaParseTest, MicrosecondsMayBeWrittenWithEitherMu) {
  const Quota expected = Quota::per(std::chrono::microseconds(1), 10);
  EXPECT_EQ(Quota::parse("10/us").value(), expected);
  EXPECT_EQ(Quota::parse("10/\xC2\xB5s").value(), expected);  // U+00B5 MICRO SIGN
  EXPECT_EQ(Quota::parse("10/\xCE\xBCs").value(), expected);  // U+03BC GREEK SMALL LETTER MU
}

TEST(QuotaParseTest, ToStringReadsBack) {
  const Quota quotas[] = {Quota::per_second(100), Quota::per_second(100).with_burst(20),
                          Quota::per(milliseconds(500), 10), Quota::per_hour(1000).with_burst(1),
                          Quota::per(Nanos{7}, 3)};
  for (const Quota& q : quotas) {
    SCOPED_TRACE(q.to_string());
    Result<Quota> back = Quota::parse(q.to_string());
    ASSERT_TRUE(back.has_value()) << back.error().message();
    EXPECT_EQ(*back, q);
  }
  EXPECT_EQ(Quota::per_second(100).with_burst(20).to_string(), "100/s burst 20");
  EXPECT_EQ(Quota::per(milliseconds(500), 10).to_string(), "10/500ms");
}

TEST(FormatDurationTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(internal::format_duration(Nanos{0}), "0s");
  EXPECT_EQ(internal::format_duration(hours(48)), "2d");
  EXPECT_EQ(internal::format_duration(minutes(90)), "90m");
  EXPECT_EQ(internal::format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(internal::format_duration(Nanos{7}), "7ns");
}

}  // namespace
}  // namespace floodgate
