#include "floodgate/replay/key_quotas.h"

#include <gtest/gtest.h>

namespace floodgate::replay {
namespace {

TEST(KeyQuotasTest, GlobsMatchWholeKeys) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("premium:*", "premium:ann"));
  EXPECT_FALSE(glob_match("premium:*", "xpremium:ann"));
  EXPECT_TRUE(glob_match("10.0.0.?", "10.0.0.7"));
  EXPECT_FALSE(glob_match("10.0.0.?", "10.0.0.77"));
  EXPECT_TRUE(glob_match("*a*b*c", "xxaybbzc"));
  EXPECT_FALSE(glob_match("*a*b*c", "xxaybbzcd"));
  EXPECT_TRUE(glob_match("literal\\*", "literal*"));
  EXPECT_FALSE(glob_match("literal\\*", "literalx"));
  EXPECT_TRUE(glob_match("a**", "abc"));
  EXPECT_FALSE(glob_match("", "a"));
}

TEST(KeyQuotasTest, TheFirstMatchingRuleWins) {
  const Result<KeyQuotas> q = KeyQuotas::parse(
      "# tiers\n"
      "premium:*   100/s burst 50  # the paying tier\n"
      "\n"
      "  10.0.0.?\t1000/min  \r\n"
      "*           5/s\n",
      "q.txt");
  ASSERT_TRUE(q) << q.error().message();
  ASSERT_EQ(q->rules().size(), 3u);
  EXPECT_EQ(q->match("premium:ann"), Quota::per_second(100).with_burst(50));
  EXPECT_EQ(q->match("10.0.0.1"), Quota::per_minute(1000));
  EXPECT_EQ(q->match("bob"), Quota::per_second(5));
  EXPECT_FALSE(KeyQuotas::parse("vip:* 1/s", "q")->match("bob"));
}

TEST(KeyQuotasTest, ErrorsNameTheFileLineAndValue) {
  Result<KeyQuotas> q = KeyQuotas::parse("a 1/s\nb 0/s\n", "tiers.txt");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("tiers.txt:2: pattern \"b\": "), std::string::npos)
      << q.error().message();
  EXPECT_NE(q.error().message().find("0/s"), std::string::npos) << q.error().message();
  q = KeyQuotas::parse("\n\nlonely\n", "t");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("t:3: rule \"lonely\" has a pattern but no quota"),
            std::string::npos)
      << q.error().message();
  std::string many;
  for (int i = 1; i <= 256; ++i) many += "k" + std::to_string(i) + " " + std::to_string(i) + "/s\n";
  q = KeyQuotas::parse(many, "t");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("t:256: more than 255 distinct quotas"), std::string::npos)
      << q.error().message();
  q = KeyQuotas::load("/nonexistent/quotas.txt");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("\"/nonexistent/quotas.txt\": cannot open"),
            std::string::npos);
}

}  // namespace
}  // namespace floodgate::replay
