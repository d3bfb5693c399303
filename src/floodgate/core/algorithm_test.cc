// Algorithm: one name per algorithm, read back by parse_algorithm; a wrong name is an error that
// names it and every choice.
#include "floodgate/core/algorithm.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace floodgate {
namespace {

TEST(AlgorithmTest, EveryNameIsDistinctAndReadsBack) {
  std::set<std::string_view> names;
  for (const Algorithm a : kAlgorithms) {
    EXPECT_TRUE(names.insert(to_string(a)).second) << to_string(a);
    const Result<Algorithm> read = parse_algorithm(to_string(a));
    ASSERT_TRUE(read) << to_string(a);
    EXPECT_EQ(*read, a);
  }
  EXPECT_EQ(names,
            (std::set<std::string_view>{"gcra", "token-bucket", "fixed-window", "sliding-log",
                                        "sliding-counter", "envoy-fixed-window"}));
}

TEST(AlgorithmTest, OnlyTheBucketsHaveABurstOfTheirOwn) {
  for (const Algorithm a : kAlgorithms) {
    EXPECT_EQ(has_burst(a), a == Algorithm::Gcra || a == Algorithm::TokenBucket) << to_string(a);
  }
}

TEST(AlgorithmTest, AWrongNameIsAnErrorNamingItAndTheChoices) {
  const Result<Algorithm> leaky = parse_algorithm("leaky");
  ASSERT_FALSE(leaky);
  EXPECT_EQ(leaky.error().message(),
            "algorithm \"leaky\": must be one of gcra, token-bucket, fixed-window, sliding-log, "
            "sliding-counter, envoy-fixed-window");
  EXPECT_FALSE(parse_algorithm("GCRA")) << "names are exact";
  EXPECT_FALSE(parse_algorithm(""));
  const Result<Algorithm> old = parse_algorithm("sliding-window");
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message().find("now called sliding-counter"), std::string::npos)
      << old.error().message();
}

}  // namespace
}  // namespace floodgate
