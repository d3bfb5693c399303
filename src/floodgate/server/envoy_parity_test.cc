// What envoyproxy/ratelimit's own tests expect of its configuration keys, its answers and its
// statistics, asked of floodgate's `Config`, `Service` and gRPC conversion (in this process; the
// same expectations through the real server and Redis are in apps/floodgate/serve_test.cc). The
// cases restate, in our words and configurations, what its config, service and limiter tests
// check.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "floodgate/server/config.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/service.h"

namespace floodgate::server {
namespace {

namespace rls = envoy::service::ratelimit::v3;

// 2025-12-02 00:00:00 UTC: the start of a second, a minute, an hour and a day.
const Instant kT0{Nanos{1'764'633'600'000'000'000}};

std::shared_ptr<const Config> parse(std::string_view text) {
  Result<Config> c = Config::parse(text, "parity.yaml");
  EXPECT_TRUE(c) << c.error().message();
  if (!c) return nullptr;
  return std::make_shared<const Config>(std::move(*c));
}

std::unique_ptr<Service> service_of(std::string_view text, ServiceOptions options = {}) {
  Result<std::unique_ptr<Service>> s = Service::create(parse(text), std::move(options));
  EXPECT_TRUE(s) << s.error().message();
  return s ? std::move(*s) : nullptr;
}

// A request of one descriptor per list of entries.
Request request(std::string_view domain, std::vector<std::vector<Entry>> descriptors,
                std::uint32_t hits = 0) {
  Request r{domain, {}, hits};
  for (auto& entries : descriptors) r.descriptors.push_back({std::move(entries), {}, {}});
  return r;
}

// Returns `message` as JSON, printed by protobuf.
std::string json_of(const google::protobuf::Message& message) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json).ok());
  return json;
}

// Returns the counter floodgate_rule_`name`_total of `rule` in `service`'s metrics (with `key`:
// floodgate_rule_value_`name`_total of that value), or -1.
long long counter(const Service& service, const std::string& name, const std::string& rule,
                  const std::string& key = "") {
  std::string out;
  service.write_metrics(out);
  const std::string line = (key.empty() ? "floodgate_rule_" : "floodgate_rule_value_") + name +
                           "_total{domain=\"" + rule.substr(0, rule.find('.')) + "\",rule=\"" +
                           rule + "\"" + (key.empty() ? "" : ",key=\"" + key + "\"") + "} ";
  const std::size_t at = out.find(line);
  if (at == std::string::npos) return -1;
  return std::stoll(out.substr(at + line.size()));
}

// The configuration keys envoyproxy/ratelimit reads, each with its meaning: a migrating user's
// files load unchanged.
constexpr std::string_view kKeys = R"(domain: d
descriptors:
  - key: files
    value: "files/*"
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: file
    value: test1
    rate_limit: {unit: minute, requests_per_unit: 50}
  - key: file
    value: "test*"
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: plain
    value: "p*"
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: route
    value_to_metric: true
    descriptors:
      - key: method
        value_to_metric: true
        descriptors:
          - key: subject
            rate_limit: {unit: minute, requests_per_unit: 60}
  - key: k1
    value_to_metric: true
    descriptors:
      - key: k2
        rate_limit: {unit: second, requests_per_unit: 1}
  - key: api
    value: "v*"
    value_to_metric: true
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: service
    value: "svc/*"
    share_threshold: true
    descriptors:
      - key: endpoint
        detailed_metric: true
        rate_limit: {unit: minute, requests_per_unit: 80}
  - key: outer
    detailed_metric: true
    descriptors:
      - key: inner
        detailed_metric: true
        rate_limit: {unit: minute, requests_per_unit: 5}
  - key: soft
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: hard
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: tagged
    metadata:
      name: service_1
      nested: {a: 1, flag: true, quoted: "true", none: null, list: [x, 2]}
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: other_tag
    metadata:
      name: service_2
      nested: {b: 2}
      extra: yes-string
    rate_limit: {unit: minute, requests_per_unit: 5}
)";

TEST(EnvoyParityTest, EveryConfigurationKeyOfEnvoyRatelimitLoads) {
  const auto c = parse(kKeys);
  ASSERT_NE(c, nullptr);
  const std::vector<Entry> files = {{"files", "files/a"}};
  const Descriptor* rule = c->match("d", files);
  ASSERT_NE(rule, nullptr);
  EXPECT_TRUE(rule->share_threshold);
  const std::vector<Entry> soft = {{"soft", "x"}};
  ASSERT_NE(c->match("d", soft), nullptr);
  EXPECT_TRUE(c->match("d", soft)->quota_mode);
  // Metadata is read as YAML's core schema types it.
  const std::vector<Entry> tagged = {{"tagged", "x"}};
  const MetadataValue& m = c->match("d", tagged)->metadata;
  ASSERT_EQ(m.kind, MetadataValue::Kind::Map);
  ASSERT_EQ(m.keys, (std::vector<std::string>{"name", "nested"}));
  EXPECT_EQ(m.items[0].string, "service_1");
  const MetadataValue& nested = m.items[1];
  ASSERT_EQ(nested.keys, (std::vector<std::string>{"a", "flag", "quoted", "none", "list"}));
  EXPECT_EQ(nested.items[0].kind, MetadataValue::Kind::Number);
  EXPECT_EQ(nested.items[0].number, 1.0);
  EXPECT_EQ(nested.items[1].kind, MetadataValue::Kind::Bool);
  EXPECT_EQ(nested.items[2].kind, MetadataValue::Kind::String) << "a quoted true is a string";
  EXPECT_EQ(nested.items[3].kind, MetadataValue::Kind::Null);
  ASSERT_EQ(nested.items[4].kind, MetadataValue::Kind::List);
  EXPECT_EQ(nested.items[4].items[1].number, 2.0);
}

// share_threshold: the values one wildcard matches share one counter; a value written exactly
// keeps its own rule.
TEST(EnvoyParityTest, ValuesAWildcardWithShareThresholdMatchesShareOneCounter) {
  auto service = service_of(kKeys);
  ASSERT_NE(service, nullptr);
  for (const char* value : {"files/a", "files/b", "files/c"}) {
    EXPECT_EQ(service->should_rate_limit(request("d", {{{"files", value}}}), kT0).overall, Code::Ok)
        << value;
  }
  EXPECT_EQ(service->should_rate_limit(request("d", {{{"files", "files/d"}}}), kT0).overall,
            Code::OverLimit)
      << "the fourth value is the fourth hit on one counter of 3";
  // Without share_threshold, every value has its own counter.
  for (const char* value : {"p1", "p2", "p3", "p4"}) {
    EXPECT_EQ(service->should_rate_limit(request("d", {{{"plain", value}}}), kT0).overall, Code::Ok)
        << value;
  }
  // An exact value wins over the shared wildcard, and is not counted in it.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(service->should_rate_limit(request("d", {{{"file", "test1"}}}), kT0).overall,
              Code::Ok);
  }
  EXPECT_EQ(service->should_rate_limit(request("d", {{{"file", "test2"}}}), kT0).overall, Code::Ok);
  EXPECT_EQ(service->should_rate_limit(request("d", {{{"file", "testX"}}}), kT0).overall, Code::Ok);
  EXPECT_EQ(service->should_rate_limit(request("d", {{{"file", "test3"}}}), kT0).overall,
            Code::OverLimit);
}

// The names envoyproxy/ratelimit gives a request descriptor's statistics: the rule's id, with
// the request's values where `value_to_metric` says, and every level's with `detailed_metric`.
TEST(EnvoyParityTest, StatisticsAreNamedAsEnvoyRatelimitNamesThem) {
  const auto c = parse(kKeys);
  ASSERT_NE(c, nullptr);
  const auto key = [&](std::vector<Entry> entries) {
    const Descriptor* rule = c->match("d", entries);
    EXPECT_NE(rule, nullptr);
    return rule == nullptr ? std::string() : Config::stats_key("d", *rule, entries);
  };
  // value_to_metric at two levels of three.
  EXPECT_EQ(key({{"route", "draw"}, {"method", "GET"}, {"subject", "123"}}),
            "d.route_draw.method_GET.subject");
  // At the level that has it only.
  EXPECT_EQ(key({{"k1", "A"}, {"k2", "foo"}}), "d.k1_A.k2");
  // On a wildcard: the request's value instead of the pattern.
  EXPECT_EQ(key({{"api", "v2"}}), "d.api_v2");
  // Without it, a wildcard is named by its pattern, an exact value by itself.
  EXPECT_EQ(key({{"plain", "p9"}}), "d.plain_p*");
  EXPECT_EQ(key({{"file", "test1"}}), "d.file_test1");
  // detailed_metric: every level's key and value, however deep.
  EXPECT_EQ(key({{"outer", "o"}, {"inner", "i"}}), "d.outer_o.inner_i");
  // A level that shares its values is named by its pattern, in detailed names too.
  EXPECT_EQ(key({{"service", "svc/a"}, {"endpoint", "x"}}), "d.service_svc/*.endpoint_x");

  // The service counts them so, beside the rule's own counters.
  auto service = service_of(kKeys);
  ASSERT_NE(service, nullptr);
  (void)service->should_rate_limit(
      request("d", {{{"route", "draw"}, {"method", "GET"}, {"subject", "1"}}}), kT0);
  (void)service->should_rate_limit(request("d", {{{"outer", "o"}, {"inner", "i"}}}), kT0);
  EXPECT_EQ(counter(*service, "hits", "d.route.method.subject", "d.route_draw.method_GET.subject"),
            1);
  EXPECT_EQ(counter(*service, "hits", "d.outer.inner", "d.outer_o.inner_i"), 1);
  EXPECT_EQ(counter(*service, "hits", "d.outer.inner"), 1);
}

// quota_mode: a descriptor over its quota makes the request over the limit only when every
// quota-mode descriptor is; its own status still says so.
TEST(EnvoyParityTest, QuotaModeDescriptorsFailARequestOnlyAllTogether) {
  auto service = service_of(kKeys);
  ASSERT_NE(service, nullptr);
  (void)service->should_rate_limit(request("d", {{{"soft", "a"}}}), kT0);
  Response r = service->should_rate_limit(
      request("d", {{{"soft", "a"}}, {{"soft", "b"}}, {{"hard", "a"}}}), kT0);
  EXPECT_EQ(r.statuses[0].code, Code::OverLimit);
  EXPECT_TRUE(r.statuses[0].quota_mode);
  EXPECT_EQ(r.statuses[1].code, Code::Ok);
  EXPECT_EQ(r.statuses[2].code, Code::Ok);
  EXPECT_EQ(r.overall, Code::Ok) << "one of two quota descriptors over, and no hard limit over";
  r = service->should_rate_limit(request("d", {{{"soft", "a"}}}), kT0);
  EXPECT_EQ(r.overall, Code::OverLimit) << "every quota-mode descriptor is over";
  r = service->should_rate_limit(request("d", {{{"soft", "a"}}, {{"hard", "a"}}}), kT0);
  EXPECT_EQ(r.overall, Code::OverLimit) << "the hard limit is over";
  // QUOTA_MODE puts every rule in quota mode.
  auto global = service_of(kKeys, {.quota_mode = true});
  ASSERT_NE(global, nullptr);
  (void)global->should_rate_limit(request("d", {{{"hard", "b"}}}), kT0);
  r = global->should_rate_limit(request("d", {{{"hard", "b"}}, {{"files", "files/x"}}}), kT0);
  EXPECT_EQ(r.statuses[0].code, Code::OverLimit);
  EXPECT_EQ(r.overall, Code::Ok);
}

// SHADOW_MODE for the whole service turns only the overall code to OK; a rule's shadow_mode
// turns its descriptor's status to OK.
TEST(EnvoyParityTest, GlobalShadowModeKeepsEachStatusAndAnswersOkOverall) {
  constexpr std::string_view kText = R"(domain: d
descriptors:
  - key: k
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: s
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
)";
  auto global = service_of(kText, {.shadow_mode = true});
  ASSERT_NE(global, nullptr);
  (void)global->should_rate_limit(request("d", {{{"k", "a"}}}), kT0);
  const Response r = global->should_rate_limit(request("d", {{{"k", "a"}}}), kT0);
  EXPECT_EQ(r.overall, Code::Ok);
  EXPECT_EQ(r.statuses[0].code, Code::OverLimit);
  EXPECT_TRUE(r.statuses[0].shadowed);
  auto per_rule = service_of(kText);
  ASSERT_NE(per_rule, nullptr);
  (void)per_rule->should_rate_limit(request("d", {{{"s", "a"}}}), kT0);
  const Response shadowed = per_rule->should_rate_limit(request("d", {{{"s", "a"}}}), kT0);
  EXPECT_EQ(shadowed.overall, Code::Ok);
  EXPECT_EQ(shadowed.statuses[0].code, Code::Ok);
  EXPECT_TRUE(shadowed.statuses[0].shadowed);
  EXPECT_EQ(counter(*per_rule, "shadow_mode", "d.s"), 1);
}

// A call whose hits cross the limit is split as envoyproxy/ratelimit splits it: past the limit,
// over; between floor(limit x NEAR_LIMIT_RATIO) and the limit, near.
TEST(EnvoyParityTest, HitsThatCrossTheLimitAreSplitIntoNearAndOver) {
  constexpr std::string_view kText = R"(domain: d
descriptors:
  - key: k
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: t
    rate_limit: {unit: minute, requests_per_unit: 10}
)";
  auto service = service_of(kText);
  ASSERT_NE(service, nullptr);
  (void)service->should_rate_limit(request("d", {{{"k", "a"}}}, 2), kT0);
  EXPECT_EQ(counter(*service, "near_limit", "d.k"), 0) << "2 of 5: not near";
  // 2 -> 7 of 5: 2 over, 1 near (the 5th; the near threshold is 4).
  EXPECT_EQ(service->should_rate_limit(request("d", {{{"k", "a"}}}, 5), kT0).overall,
            Code::OverLimit);
  EXPECT_EQ(counter(*service, "over_limit", "d.k"), 2);
  EXPECT_EQ(counter(*service, "near_limit", "d.k"), 1);
  EXPECT_EQ(counter(*service, "within_limit", "d.k"), 2);
  EXPECT_EQ(counter(*service, "hits", "d.k"), 7);
  // Already over: every hit is over.
  (void)service->should_rate_limit(request("d", {{{"k", "a"}}}, 3), kT0);
  EXPECT_EQ(counter(*service, "over_limit", "d.k"), 5);
  EXPECT_EQ(counter(*service, "near_limit", "d.k"), 1);
  // Within the limit, only the hits past the threshold are near: 3 -> 9 of 10 is 1 near.
  (void)service->should_rate_limit(request("d", {{{"t", "a"}}}, 3), kT0);
  (void)service->should_rate_limit(request("d", {{{"t", "a"}}}, 6), kT0);
  EXPECT_EQ(counter(*service, "near_limit", "d.t"), 1);
  EXPECT_EQ(counter(*service, "within_limit", "d.t"), 9);
  // NEAR_LIMIT_RATIO 0.5: the threshold is 5, so 3 -> 9 is 4 near.
  auto half = service_of(kText, {.near_limit_ratio = 0.5f});
  ASSERT_NE(half, nullptr);
  (void)half->should_rate_limit(request("d", {{{"t", "a"}}}, 3), kT0);
  (void)half->should_rate_limit(request("d", {{{"t", "a"}}}, 6), kT0);
  EXPECT_EQ(counter(*half, "near_limit", "d.t"), 4);
}

// duration_until_reset, for Envoy's window: whole seconds to the window's end, from 1 to the unit,
// never 0, also for a check (0 hits) of a counter that has none.
TEST(EnvoyParityTest, DurationUntilResetIsWholeSecondsFromOneToTheUnit) {
  constexpr std::string_view kText = R"(domain: d
descriptors:
  - key: s
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: m
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: g
    rate_limit: {unit: minute, requests_per_unit: 5, algorithm: gcra}
)";
  auto service = service_of(kText);
  ASSERT_NE(service, nullptr);
  const auto reset = [&](std::string_view key, Nanos at, std::optional<std::uint64_t> hits = {}) {
    Request r = request("d", {{{key, "x"}}});
    r.descriptors[0].hits_addend = hits;
    return service->should_rate_limit(r, kT0 + at).statuses[0].duration_until_reset;
  };
  EXPECT_EQ(reset("s", std::chrono::milliseconds(996)), std::chrono::seconds(1));
  EXPECT_EQ(reset("m", std::chrono::milliseconds(50'753)), std::chrono::seconds(10));
  EXPECT_EQ(reset("m", std::chrono::seconds(0)), std::chrono::seconds(60));
  EXPECT_EQ(reset("m", std::chrono::seconds(59) + std::chrono::milliseconds(999), 0),
            std::chrono::seconds(1));
  EXPECT_EQ(reset("s", std::chrono::seconds(7), 0), std::chrono::seconds(1))
      << "a check of a fresh counter";
  // A descriptor's own limit is Envoy's window too.
  Request own = request("d", {{{"nobody", "x"}}});
  own.descriptors[0].limit = LimitOverride{3, Unit::Hour};
  EXPECT_EQ(service->should_rate_limit(own, kT0 + std::chrono::milliseconds(1'500))
                .statuses[0]
                .duration_until_reset,
            std::chrono::seconds(3'599));
  // The exact algorithms keep their exact wait: 1 of 5 a minute is back in 12 s.
  EXPECT_EQ(reset("g", std::chrono::milliseconds(250)), std::chrono::seconds(12));
}

// What goes over the wire: an unlimited descriptor has no current limit; dynamic metadata holds
// the request and the metadata of the descriptors within their limit, the first value of a key
// winning and maps merged.
TEST(EnvoyParityTest, TheAnswerOnTheWireIsEnvoyRatelimits) {
  constexpr std::string_view kText = R"(domain: d
descriptors:
  - key: open
    rate_limit: {unlimited: true}
    metadata: {never: shown}
)";
  const std::string text = std::string(kKeys) + std::string(kText.substr(kText.find("  - key")));
  auto service = service_of(text);
  ASSERT_NE(service, nullptr);
  // "tagged" (1 a minute) is used up first; then it is over and its metadata is not given.
  (void)service->should_rate_limit(request("d", {{{"tagged", "x"}}}), kT0);
  Request r = request("d", {{{"open", "x"}}, {{"other_tag", "y"}}, {{"tagged", "x"}}}, 2);
  r.descriptors[2].hits_addend = 1;
  r.descriptors[1].limit = std::nullopt;
  const Response response = service->should_rate_limit(r, kT0);
  rls::RateLimitResponse proto;
  to_proto(r, response, proto, {.dynamic_metadata = true});
  ASSERT_EQ(proto.statuses_size(), 3);
  EXPECT_EQ(proto.statuses(0).code(), rls::RateLimitResponse::OK);
  EXPECT_FALSE(proto.statuses(0).has_current_limit());
  EXPECT_FALSE(proto.statuses(0).has_duration_until_reset());
  EXPECT_EQ(proto.statuses(0).limit_remaining(), 4'294'967'295u);
  EXPECT_EQ(proto.statuses(2).code(), rls::RateLimitResponse::OVER_LIMIT);
  // Read as JSON (protobuf's printer: its maps stay in libprotobuf), each field in place.
  const std::string json = json_of(proto.dynamic_metadata());
  const auto has = [&](std::string_view part) { return json.find(part) != std::string::npos; };
  EXPECT_TRUE(has(R"("domain":"d")")) << json;
  EXPECT_TRUE(has(R"({"entries":["open=x"]})")) << json;
  EXPECT_TRUE(has(R"({"entries":["other_tag=y"]})")) << json;
  EXPECT_TRUE(has(R"("entries":["tagged=x"])")) << json;
  EXPECT_TRUE(has(R"("hitsAddend":1)")) << "the descriptor's: " << json;
  EXPECT_TRUE(has(R"("hitsAddend":2)")) << "the request's: " << json;
  EXPECT_TRUE(has(R"("name":"service_2")")) << "only other_tag passed: " << json;
  EXPECT_FALSE(has("service_1")) << "tagged is over its limit: " << json;
  EXPECT_FALSE(has("never")) << "an unlimited descriptor gives none: " << json;
  EXPECT_TRUE(has(R"("extra":"yes-string")")) << json;
  // Without the option, none.
  rls::RateLimitResponse plain;
  to_proto(r, response, plain);
  EXPECT_FALSE(plain.has_dynamic_metadata());
}

// Two passed descriptors' metadata: the first's value of a key wins; maps are merged.
TEST(EnvoyParityTest, MetadataOfPassedDescriptorsIsMergedFirstValueWinning) {
  auto service = service_of(kKeys);
  ASSERT_NE(service, nullptr);
  const Request r = request("d", {{{"tagged", "x"}}, {{"other_tag", "y"}}});
  const Response response = service->should_rate_limit(r, kT0);
  rls::RateLimitResponse proto;
  to_proto(r, response, proto, {.dynamic_metadata = true});
  const std::string json = json_of(proto.dynamic_metadata());
  const auto has = [&](std::string_view part) { return json.find(part) != std::string::npos; };
  EXPECT_TRUE(has(R"("name":"service_1")")) << "the first descriptor's: " << json;
  EXPECT_FALSE(has("service_2")) << json;
  EXPECT_TRUE(has(R"("a":1)")) << json;
  EXPECT_TRUE(has(R"("b":2)")) << "maps are merged: " << json;
  EXPECT_TRUE(has(R"("flag":true)")) << json;
  EXPECT_TRUE(has(R"("quoted":"true")")) << "a quoted true is a string: " << json;
  EXPECT_TRUE(has(R"("none":null)")) << json;
  EXPECT_TRUE(has(R"("list":["x",2])")) << json;
}

// A descriptor's own limit is ignored in a domain the configuration does not have; overrides of
// one unit with different counts share one counter.
TEST(EnvoyParityTest, OwnLimitsAreIgnoredInAnUnknownDomainAndShareACountPerUnit) {
  auto service = service_of(kKeys);
  ASSERT_NE(service, nullptr);
  Request unknown = request("nowhere", {{{"k", "v"}}});
  unknown.descriptors[0].limit = LimitOverride{0, Unit::Second};
  const Response none = service->should_rate_limit(unknown, kT0);
  EXPECT_EQ(none.overall, Code::Ok);
  EXPECT_FALSE(none.statuses[0].own_limit);
  Request five = request("d", {{{"k", "v"}}});
  five.descriptors[0].limit = LimitOverride{5, Unit::Minute};
  Request ten = five;
  ten.descriptors[0].limit = LimitOverride{10, Unit::Minute};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(service->should_rate_limit(five, kT0).overall, Code::Ok);
  EXPECT_EQ(service->should_rate_limit(five, kT0).overall, Code::OverLimit);
  const Response shared = service->should_rate_limit(ten, kT0);
  EXPECT_EQ(shared.overall, Code::Ok);
  EXPECT_EQ(shared.statuses[0].limit_remaining, 3u) << "7 of 10 on the one counter";
  // Another unit is another counter.
  Request hour = five;
  hour.descriptors[0].limit = LimitOverride{5, Unit::Hour};
  EXPECT_EQ(service->should_rate_limit(hour, kT0).statuses[0].limit_remaining, 4u);
}

}  // namespace
}  // namespace floodgate::server
