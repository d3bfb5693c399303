#include "floodgate/replay/key_quotas.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>

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

TEST(KeyQuotasTest, ExactPatternsLookedUpByHashGiveTheFirstMatchAsAScanWould) {
  // Random rule lists mixing exact patterns (some escaped, some repeated) and globs; every key
  // gets the quota of the first rule that matches, as a linear scan finds it.
  std::mt19937_64 rng(14);
  const std::string letters = "ab*?\\";
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    std::vector<std::pair<std::string, Quota>> rules;
    for (int i = 0; i < 12; ++i) {
      std::string pattern;
      const std::size_t length = 1 + rng() % 3;
      const bool exact = rng() % 2 == 0;
      for (std::size_t j = 0; j < length; ++j) {
        pattern += exact ? letters[rng() % 2] : letters[rng() % letters.size()];
      }
      if (exact && rng() % 4 == 0) pattern = "\\*" + pattern;  // An escaped star is exact.
      const Quota quota = Quota::per_second(1 + rng() % 4);
      rules.emplace_back(pattern, quota);
      text += pattern + " " + quota.to_string() + "\n";
    }
    const Result<KeyQuotas> q = KeyQuotas::parse(text, "t");
    ASSERT_TRUE(q) << q.error().message();
    for (const std::string key : {"", "a", "b", "ab", "ba", "aa", "abb", "*a", "*ab", "?", "\\"}) {
      std::optional<Quota> scan;
      for (const auto& [pattern, quota] : rules) {
        if (glob_match(pattern, key)) {
          scan = quota;
          break;
        }
      }
      EXPECT_EQ(q->match(key), scan) << "trial " << trial << " key \"" << key << "\"\n" << text;
    }
  }
}

TEST(KeyQuotasTest, ADirectoryIsNotAnEmptyRuleFile) {
  const Result<KeyQuotas> q = KeyQuotas::load(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("cannot read: Is a directory"), std::string::npos)
      << q.error().message();
}

TEST(KeyQuotasTest, ErrorsEscapeBytesThatAreNotPrintable) {
  const Result<KeyQuotas> q = KeyQuotas::parse(std::string("al\x01"
                                                           "ce 1/s\0junk\n",
                                                           15),
                                               "q.txt");
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().message().substr(0, 50),
            "q.txt:1: pattern \"al\\x01ce\": quota \"1/s\\x00junk\": ");
}

}  // namespace
}  // namespace floodgate::replay
