#include "floodgate/server/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "floodgate/keyed/keyed_limiter.h"

namespace floodgate::server {
namespace {

constexpr std::string_view kConfig = R"(domain: edge
descriptors:
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: path
    value: /login
    rate_limit: {unit: minute, requests_per_unit: 5, name: login}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 100, replaces: [{name: login}]}
  - key: vip
    rate_limit: {unlimited: true}
  - key: banned
    rate_limit: {unit: hour, requests_per_unit: 0}
  - key: trial
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: api
    rate_limit: {unit: second, requests_per_unit: 10, algorithm: gcra, burst: 4}
  - key: slide
    rate_limit: {unit: minute, requests_per_unit: 2, algorithm: sliding-counter}
)";

// 2025-12-02 00:00:00 UTC, the start of a minute.
const Instant kT0{Nanos{1'764'633'600'000'000'000}};

std::shared_ptr<const Config> config(std::string_view text = kConfig) {
  Result<Config> c = Config::parse(text, "edge.yaml");
  EXPECT_TRUE(c) << c.error().message();
  return std::make_shared<const Config>(std::move(*c));
}

// Returns a service for `c`; the test stops at a failure.
std::unique_ptr<Service> make(std::shared_ptr<const Config> c, ServiceOptions options = {}) {
  Result<std::unique_ptr<Service>> s = Service::create(std::move(c), std::move(options));
  if (!s) {
    ADD_FAILURE() << s.error().message();
    return nullptr;
  }
  return std::move(*s);
}

Request one(std::string_view key, std::string_view value, std::uint32_t hits = 0) {
  return Request{
      "edge", {RequestDescriptor{{Entry{key, value}}, std::nullopt, std::nullopt}}, hits};
}

// Requests decided together answer as the same requests one after the other: one backend call
// for all, in order, so two requests on one value see each other.
TEST(ServiceTest, RequestsDecidedTogetherAnswerAsOneAfterTheOther) {
  auto together = make(config(), {});
  auto alone = make(config(), {});
  ASSERT_TRUE(together && alone);
  std::vector<Request> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(one("ip", "10.0.0.1"));  // 3 a minute.
  requests.push_back(one("path", "/login", 2));
  requests.push_back(one("vip", "x"));
  requests.push_back(one("banned", "x"));
  requests.push_back(one("nothing", "x"));
  requests.push_back(Request{"elsewhere", {RequestDescriptor{{Entry{"ip", "1"}}, {}, {}}}, 0});
  requests.push_back(one("api", "k", 3));
  requests.push_back(one("api", "k", 3));  // GCRA burst 4: 3 then 3 more is over.
  std::vector<const Request*> pointers;
  for (const Request& r : requests) pointers.push_back(&r);
  const Instant at = kT0 + std::chrono::seconds(5);
  const std::vector<Response> batch = together->should_rate_limit_all(pointers, at);
  ASSERT_EQ(batch.size(), requests.size());
  const std::vector<Code> expected = {Code::Ok, Code::Ok, Code::Ok,        Code::OverLimit,
                                      Code::Ok, Code::Ok, Code::OverLimit, Code::Ok,
                                      Code::Ok, Code::Ok, Code::OverLimit};
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const Response each = alone->should_rate_limit(requests[i], at);
    EXPECT_EQ(batch[i].overall, expected[i]) << i;
    EXPECT_EQ(batch[i].overall, each.overall) << i;
    ASSERT_EQ(batch[i].statuses.size(), each.statuses.size()) << i;
    for (std::size_t d = 0; d < each.statuses.size(); ++d) {
      EXPECT_EQ(batch[i].statuses[d].code, each.statuses[d].code) << i;
      EXPECT_EQ(batch[i].statuses[d].limit_remaining, each.statuses[d].limit_remaining) << i;
      EXPECT_EQ(batch[i].statuses[d].duration_until_reset, each.statuses[d].duration_until_reset)
          << i;
      const auto id = [](const DescriptorStatus& st) {
        return st.rule == nullptr ? std::string("-") : st.rule->id;
      };
      EXPECT_EQ(id(batch[i].statuses[d]), id(each.statuses[d])) << i;
    }
  }
  EXPECT_TRUE(together->should_rate_limit_all({}, at).empty());
}

TEST(ServiceTest, FixedWindowCountsEveryHitAsEnvoyRatelimitDoes) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  for (std::uint32_t i = 0; i < 3; ++i) {
    const Response r =
        service.should_rate_limit(one("ip", "10.0.0.1"), kT0 + std::chrono::seconds(1));
    ASSERT_EQ(r.overall, Code::Ok) << i;
    EXPECT_EQ(r.statuses[0].limit_remaining, 2 - i);
    EXPECT_EQ(r.statuses[0].duration_until_reset, std::chrono::seconds(59));
    ASSERT_NE(r.statuses[0].rule, nullptr);
    EXPECT_EQ(r.statuses[0].rule->id, "edge.ip");
  }
  const Response over =
      service.should_rate_limit(one("ip", "10.0.0.1"), kT0 + std::chrono::seconds(30));
  EXPECT_EQ(over.overall, Code::OverLimit);
  EXPECT_EQ(over.statuses[0].code, Code::OverLimit);
  EXPECT_EQ(over.statuses[0].limit_remaining, 0u);
  EXPECT_EQ(over.statuses[0].duration_until_reset, std::chrono::seconds(30));
  // Another value of the key has its own window; the next minute starts over.
  EXPECT_EQ(service.should_rate_limit(one("ip", "10.0.0.2"), kT0).overall, Code::Ok);
  EXPECT_EQ(service.should_rate_limit(one("ip", "10.0.0.1"), kT0 + std::chrono::minutes(1)).overall,
            Code::Ok);
}

TEST(ServiceTest, HitsAddendOfTheRequestAndOfTheDescriptor) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  // The request's hits: 2 of 3.
  Response r = service.should_rate_limit(one("ip", "a", 2), kT0);
  EXPECT_EQ(r.statuses[0].limit_remaining, 1u);
  // A descriptor's hits_addend overrides the request's, and 0 counts nothing.
  Request check{"edge", {RequestDescriptor{{Entry{"ip", "a"}}, 0, std::nullopt}}, 5};
  r = service.should_rate_limit(check, kT0);
  EXPECT_EQ(r.overall, Code::Ok);
  EXPECT_EQ(r.statuses[0].limit_remaining, 1u);
  // 2 more: the count is 4, over; denied hits count too.
  r = service.should_rate_limit(
      Request{"edge", {RequestDescriptor{{Entry{"ip", "a"}}, 2, std::nullopt}}, 0}, kT0);
  EXPECT_EQ(r.overall, Code::OverLimit);
  r = service.should_rate_limit(check, kT0);
  EXPECT_EQ(r.overall, Code::OverLimit) << "a check sees the count past the limit";
}

TEST(ServiceTest, StatusesFollowTheDescriptorsInOrder) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  Request request{"edge",
                  {RequestDescriptor{{Entry{"unknown", "x"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"vip", "alice"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"banned", "mallory"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"ip", "b"}}, std::nullopt, std::nullopt}},
                  0};
  const Response r = service.should_rate_limit(request, kT0 + std::chrono::minutes(10));
  ASSERT_EQ(r.statuses.size(), 4u);
  EXPECT_EQ(r.statuses[0].code, Code::Ok);  // No rule: OK without a limit.
  EXPECT_EQ(r.statuses[0].rule, nullptr);
  EXPECT_EQ(r.statuses[1].code, Code::Ok);  // Unlimited.
  EXPECT_EQ(r.statuses[1].limit_remaining, 4'294'967'295u);
  EXPECT_EQ(r.statuses[2].code, Code::OverLimit);  // A limit of 0: always over.
  EXPECT_EQ(r.statuses[2].duration_until_reset, std::chrono::minutes(50));
  EXPECT_EQ(r.statuses[3].code, Code::Ok);
  EXPECT_EQ(r.overall, Code::OverLimit);
  // An unknown domain limits nothing.
  Request other = request;
  other.domain = "nope";
  const Response none = service.should_rate_limit(other, kT0);
  EXPECT_EQ(none.overall, Code::Ok);
  for (const DescriptorStatus& s : none.statuses) EXPECT_EQ(s.rule, nullptr);
}

TEST(ServiceTest, AMatchedRuleThatReplacesAnotherSwitchesItOff) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  const Request both{"edge",
                     {RequestDescriptor{{Entry{"path", "/login"}}, std::nullopt, std::nullopt},
                      RequestDescriptor{{Entry{"user", "alice"}}, std::nullopt, std::nullopt}},
                     0};
  for (int i = 0; i < 10; ++i) {
    const Response r = service.should_rate_limit(both, kT0);
    ASSERT_EQ(r.overall, Code::Ok) << i;
    EXPECT_EQ(r.statuses[0].rule, nullptr) << "the login rule is replaced";
    EXPECT_NE(r.statuses[1].rule, nullptr);
  }
  // Alone, the login rule applies: 5 a minute.
  int ok = 0;
  for (int i = 0; i < 10; ++i) {
    ok += service.should_rate_limit(one("path", "/login"), kT0).overall == Code::Ok ? 1 : 0;
  }
  EXPECT_EQ(ok, 5);
}

TEST(ServiceTest, ShadowModeAnswersOkAndSaysWhatItWouldHaveDenied) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  EXPECT_EQ(service.should_rate_limit(one("trial", "t"), kT0).overall, Code::Ok);
  const Response shadowed = service.should_rate_limit(one("trial", "t"), kT0);
  EXPECT_EQ(shadowed.overall, Code::Ok);
  EXPECT_TRUE(shadowed.statuses[0].shadowed);
  // The whole service in shadow mode.
  auto global_owner = make(config(), {.shadow_mode = true});
  ASSERT_TRUE(global_owner);
  Service& global = *global_owner;
  const Response banned = global.should_rate_limit(one("banned", "m"), kT0);
  EXPECT_EQ(banned.overall, Code::Ok);
  EXPECT_TRUE(banned.statuses[0].shadowed);
}

TEST(ServiceTest, GcraRulesDecideAsTheKeyedLimiter) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  KeyedLimiter<std::string, GcraRule, SteadyClock> reference{
      {.default_quota = Quota::per_second(10).with_burst(4)}};
  Instant t = kT0;
  for (int i = 0; i < 200; ++i) {
    t += Nanos{(i * 7919) % 150'000'000};
    const std::uint32_t hits = 1 + static_cast<std::uint32_t>(i % 3);
    const Response r = service.should_rate_limit(one("api", "k", hits), t);
    const Decision want = reference.try_acquire_at("1:k", t, hits);
    ASSERT_EQ(r.overall == Code::Ok, want.allowed()) << i;
    EXPECT_EQ(r.statuses[0].limit_remaining, want.remaining()) << i;
    EXPECT_EQ(r.statuses[0].duration_until_reset, want.reset_after()) << i;
  }
}

TEST(ServiceTest, SlidingWindowCountsOnlyAdmittedHits) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  EXPECT_EQ(service.should_rate_limit(one("slide", "s"), kT0).overall, Code::Ok);
  EXPECT_EQ(service.should_rate_limit(one("slide", "s"), kT0).overall, Code::Ok);
  EXPECT_EQ(service.should_rate_limit(one("slide", "s"), kT0).overall, Code::OverLimit);
  // Half way through the next minute, half of the previous minute's 2 still weigh: 1 more fits.
  const Instant later = kT0 + std::chrono::seconds(90);
  EXPECT_EQ(service.should_rate_limit(one("slide", "s"), later).overall, Code::Ok);
  EXPECT_EQ(service.should_rate_limit(one("slide", "s"), later).overall, Code::OverLimit);
}

TEST(ServiceTest, AReloadKeepsTheStateOfRulesThatDidNotChange) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  for (int i = 0; i < 3; ++i) (void)service.should_rate_limit(one("ip", "a"), kT0);
  ASSERT_EQ(service.should_rate_limit(one("ip", "a"), kT0).overall, Code::OverLimit);
  ASSERT_EQ(service.should_rate_limit(one("slide", "s"), kT0).overall, Code::Ok);
  ASSERT_EQ(service.should_rate_limit(one("slide", "s"), kT0).overall, Code::Ok);

  // The same text: every rule keeps its state.
  ASSERT_TRUE(service.set_config(config()));
  EXPECT_EQ(service.should_rate_limit(one("ip", "a"), kT0).overall, Code::OverLimit);
  // "ip" unchanged (it moved down a line: its definition is the same), "slide" changed.
  std::string changed(kConfig);
  changed.replace(changed.find("requests_per_unit: 2, algorithm: sliding-counter"),
                  std::string_view("requests_per_unit: 2").size(), "requests_per_unit: 3");
  changed = "\n" + changed;
  ASSERT_TRUE(service.set_config(config(changed)));
  EXPECT_EQ(service.should_rate_limit(one("ip", "a"), kT0).overall, Code::OverLimit);
  int ok = 0;
  for (int i = 0; i < 5; ++i) {
    ok += service.should_rate_limit(one("slide", "s"), kT0).overall == Code::Ok ? 1 : 0;
  }
  EXPECT_EQ(ok, 3) << "a changed rule starts with fresh state";
}

TEST(ServiceTest, OfManyConcurrentRequestsAtOneInstantExactlyTheLimitPasses) {
  for (const char* key : {"ip", "api", "slide"}) {
    auto service_owner = make(config(), {});
    ASSERT_TRUE(service_owner);
    Service& service = *service_owner;
    constexpr int kThreads = 8;
    constexpr int kEach = 8;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < kThreads; ++w) {
      threads.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          ok += service.should_rate_limit(one(key, "shared"), kT0).overall == Code::Ok ? 1 : 0;
        }
      });
    }
    for (auto& t : threads) t.join();
    const int want = std::string_view(key) == "ip" ? 3 : std::string_view(key) == "api" ? 4 : 2;
    EXPECT_EQ(ok.load(), want) << key;
  }
}

TEST(ServiceTest, AFloodOfDistinctValuesIsDecidedWithinTheKeyBound) {
  auto service_owner = make(config(), {.max_keys_per_rule = 64});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  int ok = 0;
  for (int i = 0; i < 10'000; ++i) {
    ok += service.should_rate_limit(one("ip", "v" + std::to_string(i)), kT0).overall == Code::Ok;
  }
  EXPECT_EQ(ok, 10'000) << "each new value is a fresh key, tracked or not";
  // A value tracked before the flood keeps its count (the flood could not evict it).
  auto kept_owner = make(config(), {.max_keys_per_rule = 64});
  ASSERT_TRUE(kept_owner);
  Service& kept = *kept_owner;
  for (int i = 0; i < 3; ++i) (void)kept.should_rate_limit(one("ip", "early"), kT0);
  for (int i = 0; i < 10'000; ++i) (void)kept.should_rate_limit(one("ip", std::to_string(i)), kT0);
  EXPECT_EQ(kept.should_rate_limit(one("ip", "early"), kT0).overall, Code::OverLimit);
}

Request with_limit(std::string_view key, std::string_view value, std::uint32_t count, Unit unit) {
  Request r = one(key, value);
  r.descriptors[0].limit = LimitOverride{count, unit};
  return r;
}

// Envoy's per-descriptor `limit`: the descriptor is limited by it, in a fixed window, and the
// configuration is not consulted (envoyproxy/ratelimit's rule), whether a rule matches or not.
TEST(ServiceTest, ADescriptorWithItsOwnLimitIsLimitedByItAlone) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  // "ip" has a rule of 3 a minute; the override says 2 an hour.
  for (int i = 0; i < 2; ++i) {
    const Response r = service.should_rate_limit(with_limit("ip", "a", 2, Unit::Hour), kT0);
    ASSERT_EQ(r.overall, Code::Ok);
    EXPECT_EQ(r.statuses[0].rule, nullptr);
    ASSERT_TRUE(r.statuses[0].own_limit);
    EXPECT_EQ(r.statuses[0].own_limit->requests_per_unit, 2u);
    EXPECT_EQ(r.statuses[0].own_limit->unit, Unit::Hour);
    EXPECT_EQ(r.statuses[0].limit_remaining, static_cast<std::uint32_t>(1 - i));
  }
  const Response over = service.should_rate_limit(with_limit("ip", "a", 2, Unit::Hour), kT0);
  EXPECT_EQ(over.overall, Code::OverLimit);
  EXPECT_EQ(over.statuses[0].duration_until_reset, std::chrono::hours(1));
  // The configured rule kept its own count: "a" has 3 a minute there.
  EXPECT_EQ(service.should_rate_limit(one("ip", "a"), kT0).statuses[0].limit_remaining, 2u);
  // Another key with the same values and limit is another counter.
  EXPECT_EQ(service.should_rate_limit(with_limit("user", "a", 2, Unit::Hour), kT0).overall,
            Code::Ok);
  // A domain the configuration does not have limits nothing, not even by a descriptor's own
  // limit (as envoyproxy/ratelimit).
  Request elsewhere = with_limit("ip", "a", 0, Unit::Hour);
  elsewhere.domain = "other";
  const Response unknown = service.should_rate_limit(elsewhere, kT0);
  EXPECT_EQ(unknown.overall, Code::Ok);
  EXPECT_FALSE(unknown.statuses[0].own_limit);
  // Own limits of one unit share one count, whatever their counts (upstream's key is the domain,
  // the entries and the window): 2 hits of "a" so far this hour.
  const Response shared = service.should_rate_limit(with_limit("ip", "a", 5, Unit::Hour), kT0);
  EXPECT_EQ(shared.overall, Code::Ok);
  EXPECT_EQ(shared.statuses[0].limit_remaining, 1u) << "4 of 5 (the over-limit hit counts too)";
  // A key no rule knows is limited too; a limit of 0 is always over, with its limit said.
  const Response zero = service.should_rate_limit(with_limit("nobody", "x", 0, Unit::Second), kT0);
  EXPECT_EQ(zero.overall, Code::OverLimit);
  ASSERT_TRUE(zero.statuses[0].own_limit);
  EXPECT_EQ(zero.statuses[0].duration_until_reset, std::chrono::seconds(1));

  std::string out;
  service.write_metrics(out);
  const auto has = [&](const std::string& line) {
    return out.find(line + "\n") != std::string::npos;
  };
  // Counted per domain of the configuration.
  EXPECT_TRUE(has("floodgate_rule_hits_total{domain=\"edge\",rule=\"edge.(limit)\"} 6")) << out;
  EXPECT_TRUE(has("floodgate_rule_over_limit_total{domain=\"edge\",rule=\"edge.(limit)\"} 2"))
      << out;
  EXPECT_EQ(out.find("rule=\"(limit)\"} 1"), std::string::npos) << "no other domain counted";
  EXPECT_TRUE(has("floodgate_rule_tracked_values{domain=\"\",rule=\"(limit)\"} 2")) << out;
  EXPECT_TRUE(has("floodgate_limit_overrides_untracked_total 0")) << out;
  EXPECT_TRUE(has("floodgate_rule_hits_total{domain=\"edge\",rule=\"edge.ip\"} 1")) << out;
}

// However many distinct limits clients send, each stays enforced: they are keys of one bounded
// container, not slots that run out (a client that sent 130 distinct limits used to leave every
// later one unenforced, "a fresh window" forever).
TEST(ServiceTest, OwnLimitsStayEnforcedHoweverManyDistinctOnesClientsSend) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  for (std::uint32_t i = 0; i < 300; ++i) {
    ASSERT_EQ(
        service.should_rate_limit(with_limit("ip", "flood", 1000 + i, Unit::Second), kT0).overall,
        Code::Ok);
  }
  EXPECT_EQ(service.should_rate_limit(with_limit("ip", "a", 1, Unit::Hour), kT0).overall, Code::Ok);
  EXPECT_EQ(service.should_rate_limit(with_limit("ip", "a", 1, Unit::Hour), kT0).overall,
            Code::OverLimit);
}

// The windows of own limits are bounded like a rule's values: past the bound, ended windows
// make room, and a window that has not ended is never dropped.
TEST(ServiceTest, OwnLimitWindowsAreBoundedAndOnlyEndedOnesAreDropped) {
  auto service_owner = make(config(), {.max_keys_per_rule = 32});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  // One hour-long window in force, then a flood of second-long ones, one second after another.
  ASSERT_EQ(service.should_rate_limit(with_limit("ip", "kept", 1, Unit::Hour), kT0).overall,
            Code::Ok);
  for (int i = 0; i < 2'000; ++i) {
    const std::string value = "v" + std::to_string(i);
    (void)service.should_rate_limit(with_limit("ip", value, 5, Unit::Second),
                                    kT0 + std::chrono::seconds(i / 10));
  }
  EXPECT_EQ(service
                .should_rate_limit(with_limit("ip", "kept", 1, Unit::Hour),
                                   kT0 + std::chrono::seconds(300))
                .overall,
            Code::OverLimit)
      << "the hour's window was dropped";
  std::string out;
  service.write_metrics(out);
  const std::string prefix = "floodgate_rule_tracked_values{domain=\"\",rule=\"(limit)\"} ";
  const auto at = out.find(prefix);
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_LE(std::stoull(out.substr(at + prefix.size())), 32u);
}

// A limit no rule could enforce (above one per nanosecond) handed to the service directly is
// over, with nothing kept; the endpoints refuse it before (RlsTest).
TEST(ServiceTest, AnOwnLimitThatCannotBeEnforcedIsOverAndNeverCrashes) {
  auto service_owner = make(config(), {});
  ASSERT_TRUE(service_owner);
  const Response r = service_owner->should_rate_limit(
      with_limit("ip", "a", std::numeric_limits<std::uint32_t>::max(), Unit::Second), kT0);
  EXPECT_EQ(r.overall, Code::OverLimit);
  ASSERT_TRUE(r.statuses[0].own_limit);
  EXPECT_FALSE(rate_limit_of(*r.statuses[0].own_limit));
  EXPECT_TRUE(rate_limit_of(LimitOverride{1'000'000'000, Unit::Second}));
}

// "Memory bounded by --max-keys-per-rule", for every algorithm: a flood of distinct values leaves
// each rule with at most that many values with state, and /metrics says how many.
TEST(ServiceTest, AFloodOfDistinctValuesKeepsEveryAlgorithmWithinItsKeyBound) {
  auto service_owner = make(config(R"(domain: flood
descriptors:
  - key: fw
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: gcra
    rate_limit: {unit: minute, requests_per_unit: 5, algorithm: gcra}
  - key: tb
    rate_limit: {unit: minute, requests_per_unit: 5, algorithm: token-bucket}
  - key: sw
    rate_limit: {unit: minute, requests_per_unit: 5, algorithm: sliding-counter}
)"),
                            {.max_keys_per_rule = 64});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  for (const char* key : {"fw", "gcra", "tb", "sw"}) {
    for (int i = 0; i < 20'000; ++i) {
      const std::string value = "v" + std::to_string(i);  // Entries are views: it must outlive r.
      Request r;
      r.domain = "flood";
      r.descriptors.push_back({{{key, value}}, std::nullopt, std::nullopt});
      ASSERT_EQ(service.should_rate_limit(r, kT0 + Nanos{i}).overall, Code::Ok);
    }
  }
  std::string out;
  service.write_metrics(out);
  for (const char* rule : {"flood.fw", "flood.gcra", "flood.tb", "flood.sw"}) {
    const std::string prefix =
        "floodgate_rule_tracked_values{domain=\"flood\",rule=\"" + std::string(rule) + "\"} ";
    const auto at = out.find(prefix);
    ASSERT_NE(at, std::string::npos) << out;
    const std::uint64_t tracked = std::stoull(out.substr(at + prefix.size()));
    EXPECT_LE(tracked, 64u) << rule;
    EXPECT_GE(tracked, 32u) << rule << ": the bound is used, not a much smaller one";
  }
}

}  // namespace
}  // namespace floodgate::server

namespace floodgate::server {
namespace {

TEST(ServiceTest, CountsHitsPerRuleAndPerValueWithinACap) {
  const std::string text = std::string(kConfig) +
                           "  - key: tenant\n    detailed_metric: true\n"
                           "    rate_limit: {unit: minute, requests_per_unit: 5}\n";
  auto service_owner = make(config(text), {});
  ASSERT_TRUE(service_owner);
  Service& service = *service_owner;
  for (int i = 0; i < 5; ++i) (void)service.should_rate_limit(one("ip", "a"), kT0);
  (void)service.should_rate_limit(one("trial", "t", 3), kT0);  // 3 hits over 1: shadowed.
  for (int i = 0; i < 1'005; ++i) {
    (void)service.should_rate_limit(one("tenant", "t" + std::to_string(i)), kT0);
  }
  std::string out;
  service.write_metrics(out);
  const auto has = [&](const std::string& line) {
    return out.find(line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has("floodgate_rule_hits_total{domain=\"edge\",rule=\"edge.ip\"} 5")) << out;
  EXPECT_TRUE(has("floodgate_rule_within_limit_total{domain=\"edge\",rule=\"edge.ip\"} 3"));
  EXPECT_TRUE(has("floodgate_rule_over_limit_total{domain=\"edge\",rule=\"edge.ip\"} 2"));
  // 2 of 3 used leaves 1 (33%): not near; 3 of 3 leaves 0: near.
  EXPECT_TRUE(has("floodgate_rule_near_limit_total{domain=\"edge\",rule=\"edge.ip\"} 1"));
  // 3 hits against 1 a minute: 1 within it (near: past 0.8 of it), 2 past it, shadowed.
  EXPECT_TRUE(has("floodgate_rule_shadow_mode_total{domain=\"edge\",rule=\"edge.trial\"} 2"))
      << out;
  EXPECT_TRUE(has("floodgate_rule_over_limit_total{domain=\"edge\",rule=\"edge.trial\"} 2"));
  EXPECT_TRUE(has("floodgate_rule_near_limit_total{domain=\"edge\",rule=\"edge.trial\"} 1"));
  EXPECT_TRUE(
      has("floodgate_rule_value_hits_total{domain=\"edge\",rule=\"edge.tenant\",key=\"edge.tenant_"
          "t7\"} 1"));
  // At most 1,000 values per rule; the rest share one line.
  EXPECT_TRUE(has(
      "floodgate_rule_value_hits_total{domain=\"edge\",rule=\"edge.tenant\",key=\"_other_\"} 5"));
  EXPECT_EQ(out.find("key=\"edge.tenant_t1004\""), std::string::npos);
  EXPECT_NE(out.find("# TYPE floodgate_rule_hits_total counter\n"), std::string::npos);
  // A reload keeps the counters of rules whose id stays.
  ASSERT_TRUE(service.set_config(config(text)));
  std::string again;
  service.write_metrics(again);
  EXPECT_NE(again.find("floodgate_rule_hits_total{domain=\"edge\",rule=\"edge.ip\"} 5\n"),
            std::string::npos);
}

// The in-process backend, refusing GCRA rules.
class NoGcraBackend final : public Backend {
 public:
  Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) override {
    if (rule.rate_limit->algorithm == Algorithm::Gcra) {
      return Error(rule.file + ":" + std::to_string(rule.line) + ": no gcra here");
    }
    return local_->make_state(rule);
  }
  void decide(std::span<BackendCall> calls, Instant now,
              std::chrono::steady_clock::time_point deadline) override {
    local_->decide(calls, now, deadline);
  }

 private:
  std::shared_ptr<Backend> local_ = make_local_backend(100);
};

// The in-process backend, recording every request's calls as it was handed them.
class RecordingBackend final : public Backend {
 public:
  struct Seen {
    bool own;
    std::string key;
    std::uint64_t hits;
    std::optional<Quota> own_limit;
  };
  Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) override {
    return local_->make_state(rule);
  }
  void decide(std::span<BackendCall> calls, Instant now,
              std::chrono::steady_clock::time_point deadline) override {
    std::vector<Seen>& seen = requests.emplace_back();
    for (const BackendCall& c : calls) {
      seen.push_back({c.state == nullptr, std::string(c.key), c.hits, c.own_limit});
    }
    local_->decide(calls, now, deadline);
  }
  std::vector<std::vector<Seen>> requests;

 private:
  std::shared_ptr<Backend> local_ = make_local_backend(100);
};

TEST(ServiceTest, ABackendDecidesAWholeRequestAtOnce) {
  const auto backend = std::make_shared<RecordingBackend>();
  auto service = make(config(), {.backend = backend});
  ASSERT_TRUE(service);
  Request request{"edge",
                  {RequestDescriptor{{Entry{"ip", "a"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"vip", "x"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"nobody", "x"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"banned", "x"}}, std::nullopt, std::nullopt},
                   RequestDescriptor{{Entry{"k", "v"}}, 0, LimitOverride{7, Unit::Minute}},
                   RequestDescriptor{{Entry{"api", "y"}}, 3, std::nullopt}},
                  2};
  const Response r = service->should_rate_limit(request, kT0);
  // One call to the backend, for the three descriptors that need state, in request order: the
  // unlimited, unmatched and zero limits are answered without it.
  ASSERT_EQ(backend->requests.size(), 1u);
  const auto& seen = backend->requests[0];
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen[0].own);
  EXPECT_EQ(seen[0].key, "1:a");
  EXPECT_EQ(seen[0].hits, 2u) << "the request's hits_addend";
  EXPECT_TRUE(seen[1].own);
  const std::vector<Entry> kv = {Entry{"k", "v"}};
  EXPECT_EQ(seen[1].key, override_key("edge", Unit::Minute, kv));
  EXPECT_EQ(seen[1].own_limit, Quota::per_minute(7));
  EXPECT_EQ(seen[1].hits, 0u) << "the descriptor's own hits_addend: a check";
  EXPECT_EQ(seen[2].hits, 3u);
  // The statuses follow the descriptors, whoever decided them.
  ASSERT_EQ(r.statuses.size(), 6u);
  EXPECT_EQ(r.statuses[0].limit_remaining, 1u);
  EXPECT_EQ(r.statuses[1].limit_remaining, std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(r.statuses[2].rule, nullptr);
  EXPECT_EQ(r.statuses[3].code, Code::OverLimit);
  EXPECT_EQ(r.statuses[4].limit_remaining, 7u);
  EXPECT_EQ(r.statuses[5].limit_remaining, 1u);
  EXPECT_EQ(r.overall, Code::OverLimit);
  // A request that needs no state makes no call.
  (void)service->should_rate_limit(one("vip", "x"), kT0);
  EXPECT_EQ(backend->requests.size(), 1u);
}

TEST(ServiceTest, ARuleWhoseStateCannotBeMadeFailsTheLoadAndAReloadKeepsThePrevious) {
  const auto no_gcra = std::make_shared<NoGcraBackend>();
  Result<std::unique_ptr<Service>> refused = Service::create(config(), {.backend = no_gcra});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "edge.yaml:17: no gcra here");

  const std::string without_gcra =
      "domain: edge\ndescriptors:\n  - key: ip\n    rate_limit: "
      "{unit: minute, requests_per_unit: 3}\n";
  auto service = make(config(without_gcra), {.backend = no_gcra});
  ASSERT_TRUE(service);
  for (int i = 0; i < 3; ++i) (void)service->should_rate_limit(one("ip", "a"), kT0);
  const Result<void> reload = service->set_config(config());
  ASSERT_FALSE(reload);
  EXPECT_EQ(service->should_rate_limit(one("ip", "a"), kT0).overall, Code::OverLimit)
      << "the previous configuration and its state stay";
}

// Rules whose ids collide keep counters of their own, in process and across reloads (they used
// to share one after any reload, and always in Redis, whose keys are named by identity now), and
// are told apart in metrics by their identities.
TEST(ServiceTest, RulesWhoseIdsCollideNeverShareStateOrCounters) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("floodgate-collide-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "a.yaml") << "domain: shop\ndescriptors:\n  - key: cart.user\n"
                                   "    rate_limit: {unit: hour, requests_per_unit: 3}\n";
  std::ofstream(dir / "b.yaml") << "domain: shop.cart\ndescriptors:\n  - key: user\n"
                                   "    rate_limit: {unit: hour, requests_per_unit: 3}\n";
  const auto load = [&] {
    Result<Config> c = Config::load(dir.string());
    EXPECT_TRUE(c) << c.error().message();
    return std::make_shared<const Config>(std::move(*c));
  };
  auto service = make(load(), {});
  ASSERT_TRUE(service);
  const auto call = [&](std::string_view domain, std::string_view key) {
    Request r = one(key, "alice");
    r.domain = domain;
    return service->should_rate_limit(r, kT0);
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call("shop", "cart.user").overall, Code::Ok);
  EXPECT_EQ(call("shop", "cart.user").overall, Code::OverLimit);
  for (int reload = 0; reload < 2; ++reload) {
    const Response other = call("shop.cart", "user");
    EXPECT_EQ(other.overall, Code::Ok) << "reload " << reload;
    EXPECT_EQ(other.statuses[0].limit_remaining, static_cast<std::uint32_t>(2 - reload));
    ASSERT_TRUE(service->set_config(load()));
  }
  std::string out;
  service->write_metrics(out);
  EXPECT_NE(out.find("floodgate_rule_hits_total{domain=\"shop\",rule=\"4:shop/9:cart.user\"} 4\n"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("floodgate_rule_hits_total{domain=\"shop.cart\",rule=\"9:shop.cart/4:user\"} 2\n"),
      std::string::npos)
      << out;
  EXPECT_NE(definition_of(service->config()->domain("shop")->descriptors[0]),
            definition_of(service->config()->domain("shop.cart")->descriptors[0]));
  std::filesystem::remove_all(dir);
}

TEST(MetricsRegistryTest, WritesEveryCollectorInTheOrderAddedWithOneFormat) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.write(), "");
  std::uint64_t n = 1;
  registry.add([&n](std::string& out) {
    append_family(out, "a_total", "Things.", "counter");
    append_sample(out, "a_total", "", n);
  });
  registry.add([](std::string& out) {
    append_family(out, "b", "Other things.", "gauge");
    append_sample(out, "b", "k=\"" + label_value("x\"y") + "\"", 7);
  });
  n = 5;  // Read when written, not when added.
  EXPECT_EQ(registry.write(),
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 5\n"
            "# HELP b Other things.\n# TYPE b gauge\nb{k=\"x\\\"y\"} 7\n");
}

TEST(ServiceMetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace floodgate::server
