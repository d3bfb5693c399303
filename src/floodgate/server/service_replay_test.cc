// ServiceReplay: descriptor templates, the errors that name a domain or key the configuration
// lacks, descriptors not sent when a field is absent, and the per-rule counts.
#include "floodgate/server/service_replay.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace floodgate::server {
namespace {

std::shared_ptr<const Config> config(const std::string& text) {
  Result<Config> parsed = Config::parse(text, "test.yaml");
  EXPECT_TRUE(parsed) << parsed.error().message();
  return std::make_shared<const Config>(std::move(*parsed));
}

constexpr const char* kConfig = R"(domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 2}
  - key: path
    value: "/api/*"
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 1}
  - key: generic_key
    value: global
    shadow_mode: true
    rate_limit: {unit: second, requests_per_unit: 1}
)";

ServiceReplay::Options options(std::vector<std::string> descriptors) {
  ServiceReplay::Options o;
  o.config = config(kConfig);
  o.domain = "edge";
  for (const std::string& d : descriptors) o.descriptors.push_back(*DescriptorTemplate::parse(d));
  return o;
}

TEST(ServiceReplayTest, TemplatesReadFieldsLiteralsAndDollars) {
  EXPECT_TRUE(DescriptorTemplate::parse("k=$a,k2=x-${b}-$$"));
  const auto error = [](std::string_view text) {
    Result<DescriptorTemplate> t = DescriptorTemplate::parse(text);
    return t ? std::string("(parsed)") : t.error().message();
  };
  EXPECT_EQ(error("k"), "descriptor \"k\": \"k\" is not key=value (e.g. remote_address=$client)");
  EXPECT_EQ(error("k=$a,=b"),
            "descriptor \"k=$a,=b\": \"=b\" is not key=value (e.g. "
            "remote_address=$client)");
  EXPECT_EQ(error("k=${a"), "descriptor \"k=${a\": '${' without its '}'");
  EXPECT_EQ(error("k=$-"), "descriptor \"k=$-\": a '$' names no field (a literal dollar is $$)");

  Result<ServiceReplay> replay = ServiceReplay::create(options({"remote_address=x-${a}-$b-$$-$a"}));
  ASSERT_TRUE(replay) << replay.error().message();
  EXPECT_EQ(replay->fields(), (std::vector<std::string>{"a", "b"}));
}

TEST(ServiceReplayTest, ADomainOrKeyTheConfigurationLacksIsNamedWithWhatItHas) {
  ServiceReplay::Options o = options({"remote_address=$client"});
  o.domain = "nope";
  Result<ServiceReplay> bad_domain = ServiceReplay::create(o);
  ASSERT_FALSE(bad_domain);
  EXPECT_EQ(bad_domain.error().message(),
            "domain \"nope\": the configuration has no such domain (it has edge)");
  Result<ServiceReplay> bad_key = ServiceReplay::create(options({"user=$client"}));
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().message(),
            "descriptor \"user=$client\": no rule of domain \"edge\" starts with key \"user\" (its "
            "rules start with \"remote_address\", \"path\", \"generic_key\")");
  EXPECT_FALSE(ServiceReplay::create(options({})));
}

TEST(ServiceReplayTest, DecidesAsTheServiceAndCountsEachRule) {
  Result<ServiceReplay> replay = ServiceReplay::create(options(
      {"remote_address=$client", "path=$path,remote_address=$client", "generic_key=global"}));
  ASSERT_TRUE(replay) << replay.error().message();
  ASSERT_EQ(replay->fields(), (std::vector<std::string>{"client", "path"}));
  const Instant t0{std::chrono::seconds(1'795'784'400)};
  const std::string_view absent;
  struct Step {
    std::int64_t ms;
    std::string_view client, path;
    bool allowed;
    std::string statuses;
  };
  const Step steps[] = {
      // The global rule is in shadow mode: over it, answered OK, counted as shadowed.
      {0, "a", "/api/x", true, "ok;ok;ok"},
      {0, "a", "/api/x", false, "ok;over;shadow"},  // The API's 1/min for a.
      {0, "a", absent, false, "over;-;shadow"},     // a's 2/s; no path: not sent.
      {0, "b", "/web", true, "ok;ok;shadow"},       // No rule for /web: OK without a limit.
      {1000, "a", absent, true, "ok;-;ok"},         // A new second.
      {1000, "c", "-", true, "ok;-;shadow"},        // "-": no value, as nginx and Envoy write it.
  };
  for (const Step& s : steps) {
    const std::string_view values[] = {s.client, s.path.data() == nullptr ? absent : s.path};
    const Response& r = replay->decide(t0 + std::chrono::milliseconds(s.ms), 1, values);
    EXPECT_EQ(r.overall == Code::Ok, s.allowed) << s.statuses;
    EXPECT_EQ(replay->statuses(), s.statuses);
  }
  const std::vector<const RuleReplay*> rules = replay->rules();
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0]->rule->id, "edge.remote_address");
  EXPECT_EQ(rules[0]->hits, 6u);
  EXPECT_EQ(rules[0]->over, 1u);
  EXPECT_EQ(rules[1]->rule->id, "edge.path_/api/*.remote_address");
  EXPECT_EQ(rules[1]->hits, 2u);
  EXPECT_EQ(rules[1]->over, 1u);
  EXPECT_EQ(rules[1]->limited.top(1)[0].first, "path=/api/x,remote_address=a");
  EXPECT_EQ(rules[2]->rule->id, "edge.generic_key_global");
  EXPECT_EQ(rules[2]->hits, 6u);
  EXPECT_EQ(rules[2]->over, 0u);
  EXPECT_EQ(rules[2]->shadowed, 4u);
  EXPECT_EQ(replay->empty_requests(), 0u);
}

TEST(ServiceReplayTest, ARequestWhoseFieldsAreAllAbsentSendsNothingAndIsCounted) {
  Result<ServiceReplay> replay = ServiceReplay::create(options({"remote_address=$client"}));
  ASSERT_TRUE(replay);
  const std::string_view values[] = {std::string_view()};
  const Response& r = replay->decide(Instant{}, 1, values);
  EXPECT_EQ(r.overall, Code::Ok);
  EXPECT_EQ(replay->statuses(), "-");
  EXPECT_EQ(replay->empty_requests(), 1u);
}

}  // namespace
}  // namespace floodgate::server
