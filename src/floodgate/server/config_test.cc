#include "floodgate/server/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace floodgate::server {
namespace {

// envoyproxy/ratelimit's README examples, in one domain.
constexpr std::string_view kExample = R"(domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 10
  - key: to_cluster
    value: mongo_cluster
    descriptors:
      - key: from_cluster
        value: service_a
        rate_limit:
          unit: MINUTE
          requests_per_unit: 500
  - key: path
    value: "/login*"
    rate_limit: {unit: minute, requests_per_unit: 5, algorithm: gcra, burst: 2, name: login}
  - key: path
    value: "/api/*/users/*"
    rate_limit: {unit: hour, requests_per_unit: 100}
  - key: path
    value: /login/special
    shadow_mode: true
    rate_limit:
      unit: day
      requests_per_unit: 0
  - key: path
    descriptors:
      - key: user
        detailed_metric: true
        rate_limit:
          unit: week
          requests_per_unit: 7
          replaces: [{name: login}]
  - key: vip
    rate_limit:
      unlimited: true
)";

Config parsed(std::string_view text = kExample) {
  Result<Config> c = Config::parse(text, "edge.yaml");
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : Config{};
}

std::string error_of(std::string_view text) {
  Result<Config> c = Config::parse(text, "bad.yaml");
  EXPECT_FALSE(c) << text;
  return c ? std::string() : c.error().message();
}

TEST(ConfigTest, ReadsEnvoyRatelimitsFormat) {
  const Config c = parsed();
  ASSERT_NE(c.domain("edge"), nullptr);
  EXPECT_EQ(c.domain_names(), std::vector<std::string>{"edge"});

  const Entry ip[] = {{"remote_address", "10.0.0.1"}};
  const Descriptor* d = c.match("edge", ip);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id, "edge.remote_address");
  EXPECT_EQ(d->line, 3);
  ASSERT_TRUE(d->rate_limit);
  EXPECT_EQ(d->rate_limit->unit, Unit::Second);
  EXPECT_EQ(d->rate_limit->requests_per_unit, 10u);
  EXPECT_EQ(d->rate_limit->algorithm, Algorithm::EnvoyFixedWindow);
  EXPECT_EQ(d->rate_limit->quota(), Quota::per_second(10));

  const Entry nested[] = {{"to_cluster", "mongo_cluster"}, {"from_cluster", "service_a"}};
  const Descriptor* n = c.match("edge", nested);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->id, "edge.to_cluster_mongo_cluster.from_cluster_service_a");
  EXPECT_EQ(n->rate_limit->unit, Unit::Minute);  // Units are read in any case.
  EXPECT_EQ(n->rate_limit->quota(), Quota::per_minute(500));

  const Descriptor* login = c.match("edge", std::vector<Entry>{{"path", "/login/x"}});
  ASSERT_NE(login, nullptr);
  EXPECT_EQ(login->rate_limit->algorithm, Algorithm::Gcra);
  EXPECT_EQ(login->rate_limit->name, "login");
  EXPECT_EQ(login->rate_limit->quota(), Quota::per_minute(5).with_burst(2));

  const Descriptor* vip = c.match("edge", std::vector<Entry>{{"vip", "anyone"}});
  ASSERT_NE(vip, nullptr);
  EXPECT_TRUE(vip->rate_limit->unlimited);
  EXPECT_EQ(vip->rate_limit->quota(), std::nullopt);

  const Descriptor* user =
      c.match("edge", std::vector<Entry>{{"path", "/other"}, {"user", "alice"}});
  ASSERT_NE(user, nullptr);
  EXPECT_TRUE(user->detailed_metric);
  EXPECT_EQ(user->rate_limit->unit, Unit::Week);
  EXPECT_EQ(user->rate_limit->quota()->period(), std::chrono::hours(24 * 7));
  EXPECT_EQ(user->rate_limit->replaces, std::vector<std::string>{"login"});
}

TEST(ConfigTest, MatchesExactThenWildcardThenKeyOnly) {
  const Config c = parsed();
  const auto rule = [&](std::string_view path) -> std::string {
    const Entry e[] = {{"path", path}};
    const Descriptor* d = c.match("edge", e);
    return d == nullptr ? "none" : d->id;
  };
  EXPECT_EQ(rule("/login/special"), "edge.path_/login/special");  // Exact beats "/login*".
  EXPECT_TRUE(c.match("edge", std::vector<Entry>{{"path", "/login/special"}})->shadow_mode);
  EXPECT_EQ(rule("/login"), "edge.path_/login*");
  EXPECT_EQ(rule("/loginx/y"), "edge.path_/login*");
  EXPECT_EQ(rule("/api/v1/users/42"), "edge.path_/api/*/users/*");
  EXPECT_EQ(rule("/api/v1/users/"), "edge.path_/api/*/users/*");
  // The key-only rule matches, but it has no rate_limit of its own: no limit.
  EXPECT_EQ(rule("/api/v1/groups/42"), "none");
  EXPECT_EQ(rule("/"), "none");
  // A descriptor of N entries needs a path of N levels.
  EXPECT_EQ(c.match("edge", std::vector<Entry>{{"to_cluster", "mongo_cluster"}}), nullptr);
  EXPECT_EQ(c.match("edge", std::vector<Entry>{{"remote_address", "x"}, {"more", "y"}}), nullptr);
  EXPECT_EQ(
      c.match("edge", std::vector<Entry>{{"to_cluster", "other"}, {"from_cluster", "service_a"}}),
      nullptr);
  // Unknown domains and keys, and empty descriptors, match nothing.
  EXPECT_EQ(c.match("nope", std::vector<Entry>{{"remote_address", "x"}}), nullptr);
  EXPECT_EQ(c.match("edge", std::vector<Entry>{{"unknown", "x"}}), nullptr);
  EXPECT_EQ(c.match("edge", std::span<const Entry>{}), nullptr);
  // Keys and values are case-sensitive.
  EXPECT_EQ(c.match("edge", std::vector<Entry>{{"Remote_Address", "x"}}), nullptr);
}

TEST(ConfigTest, WildcardsMatchAnyRunOfBytes) {
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("*", "anything"));
  EXPECT_TRUE(wildcard_match("a*", "a"));
  EXPECT_TRUE(wildcard_match("a*c", "abbbc"));
  EXPECT_TRUE(wildcard_match("*b*", "abc"));
  EXPECT_TRUE(wildcard_match("a**c", "ac"));
  EXPECT_TRUE(wildcard_match("a*b*c", "axxbyybzzc"));
  EXPECT_FALSE(wildcard_match("a*c", "abcd"));
  EXPECT_FALSE(wildcard_match("a*", "ba"));
  EXPECT_FALSE(wildcard_match("abc", "ab"));
  EXPECT_FALSE(wildcard_match("a?c", "abc"));  // Only '*' is special.
  EXPECT_TRUE(wildcard_match("a?c", "a?c"));
}

TEST(ConfigTest, RejectsMistakesWithTheFileTheLineAndTheValue) {
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    valeu: x\n"),
            "bad.yaml:4: descriptor: unknown key \"valeu\" (known: key, value, rate_limit, "
            "descriptors, shadow_mode, quota_mode, detailed_metric, value_to_metric, "
            "share_threshold, metadata)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    value: v\n"
                     "    share_threshold: true\n"),
            "bad.yaml:5: share_threshold is for a value with a wildcard '*' (descriptor \"d.k_v\" "
            "has value \"v\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    share_threshold: true\n"),
            "bad.yaml:4: share_threshold is for a value with a wildcard '*' (descriptor \"d.k\" "
            "has none)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    metadata: [a]\n"),
            "bad.yaml:4: metadata must be a map (what Envoy receives as dynamic metadata)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    quota_mode: maybe\n"),
            "bad.yaml:4: quota_mode must be true or false (got \"maybe\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    value: v\n  - key: k\n"
                     "    value: v\n"),
            "bad.yaml:5: duplicate descriptor composite key \"d.k_v\" (first at line 3)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, "
                     "requests_per_unit: 1}\n"),
            "bad.yaml:4: unit must be second, minute, hour, day, week, month or year (got "
            "\"fortnight\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n"
                     "      requests_per_unit: -1\n"),
            "bad.yaml:6: requests_per_unit must be a whole number from 0 to 4294967295 (got "
            "\"-1\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n"
                     "      requests_per_unit: 4294967296\n"),
            "bad.yaml:6: requests_per_unit must be a whole number from 0 to 4294967295 (got "
            "\"4294967296\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unlimited: true, "
                     "unit: second}\n"),
            "bad.yaml:4: an unlimited rate_limit must not set unit");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {requests_per_unit: "
                     "3}\n"),
            "bad.yaml:4: rate_limit needs a unit (or unlimited: true)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
                     "requests_per_unit: 3, burst: 9}\n"),
            "bad.yaml:4: burst is for gcra and token-bucket only (this rate_limit's algorithm is "
            "envoy-fixed-window)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
                     "requests_per_unit: 3, algorithm: leaky}\n"),
            "bad.yaml:4: algorithm \"leaky\": must be one of gcra, token-bucket, fixed-window, "
            "sliding-log, sliding-counter, envoy-fixed-window");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
                     "requests_per_unit: 3, algorithm: sliding-window}\n"),
            "bad.yaml:4: algorithm \"sliding-window\": must be one of gcra, token-bucket, "
            "fixed-window, sliding-log, sliding-counter, envoy-fixed-window (sliding-window is now "
            "called sliding-counter)");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    shadow_mode: maybe\n"),
            "bad.yaml:4: shadow_mode must be true or false (got \"maybe\")");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - value: v\n"),
            "bad.yaml:3: a descriptor needs a key");
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: \"\"\n"),
            "bad.yaml:3: a descriptor's key must not be empty");
  EXPECT_EQ(error_of("domain: \"\"\n"), "bad.yaml:1: domain must not be empty");
  EXPECT_EQ(error_of("descriptors: []\n"), "bad.yaml: no domain");
  EXPECT_EQ(error_of("domain: d\nextra: 1\n"),
            "bad.yaml:2: config: unknown key \"extra\" (known: domain, descriptors)");
  EXPECT_EQ(error_of("domain: d\ndescriptors: {key: k}\n"),
            "bad.yaml:2: descriptors must be a list");
  EXPECT_EQ(error_of("- just\n- a list\n"), "bad.yaml: must be a map with domain and descriptors");
  const std::string yaml = error_of("domain: d\ndescriptors:\n  - key: [unclosed\n");
  EXPECT_TRUE(yaml.starts_with("bad.yaml:")) << yaml;
  EXPECT_NE(yaml.find("not valid YAML"), std::string::npos) << yaml;
  // A rule that replaces itself would never apply.
  EXPECT_EQ(error_of("domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n"
                     "      requests_per_unit: 5\n      name: x\n      replaces: [{name: x}]\n"),
            "bad.yaml:8: rate_limit \"x\" replaces itself: it would never apply (remove its name "
            "from replaces)");
  // A burst the quota rules refuse.
  const std::string burst = error_of(
      "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 3, "
      "algorithm: gcra, burst: 0}\n");
  EXPECT_TRUE(burst.starts_with("bad.yaml:4: quota")) << burst;
}

// What an operator's file controls is bounded where it is read, each refusal naming the file,
// the line and the limit: keys given twice (the first used to win silently), nesting (used to be
// "bad file"), aliases that expand past their budget (a 1.2 KB file used to become 2^20 rules and
// 4 GB), and descriptors past `kMaxRules`.
TEST(ConfigTest, RefusesWhatWouldBeSilentlyMisreadOrGrowWithoutBound) {
  EXPECT_EQ(error_of("domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, "
                     "requests_per_unit: 5, requests_per_unit: 1000}\n"),
            "bad.yaml:4: key \"requests_per_unit\" given twice in one mapping (first at line 4)");
  EXPECT_EQ(error_of("domain: api\ndomain: other\ndescriptors: []\n"),
            "bad.yaml:2: key \"domain\" given twice in one mapping (first at line 1)");
  std::string deep = "{key: z, rate_limit: {unit: second, requests_per_unit: 5}}";
  for (int i = 0; i < 3000; ++i)
    deep = "{key: k" + std::to_string(i) + ", descriptors: [" + deep + "]}";
  EXPECT_EQ(error_of("domain: api\ndescriptors: [" + deep + "]\n"),
            "bad.yaml:2: nested more than 512 levels deep");
  std::string bomb = "&L0 [{key: z, rate_limit: {unit: second, requests_per_unit: 5}}]";
  for (int i = 1; i <= 20; ++i) {
    bomb = "&L" + std::to_string(i) + " [{key: a, descriptors: " + bomb +
           "}, {key: b, descriptors: *L" + std::to_string(i - 1) + "}]";
  }
  const std::string refused = error_of("domain: api\ndescriptors: " + bomb + "\n");
  EXPECT_TRUE(refused.starts_with("bad.yaml:2: aliases expand to more than 100000 nodes"))
      << refused;
  // An anchored rate limit reused by many descriptors is what aliases are for.
  std::string reuse =
      "domain: api\ndescriptors:\n  - key: base\n    rate_limit: &l {unit: second, "
      "requests_per_unit: 5}\n";
  for (int i = 0; i < 1000; ++i) reuse += "  - {key: k" + std::to_string(i) + ", rate_limit: *l}\n";
  Result<Config> reused = Config::parse(reuse, "ok.yaml");
  ASSERT_TRUE(reused) << reused.error().message();
  EXPECT_EQ(reused->domain("api")->descriptors.size(), 1001u);
  EXPECT_EQ(reused->domain("api")->descriptors[1000].rate_limit->requests_per_unit, 5u);
  // Descriptors are counted over every file of a configuration.
  std::size_t rules = kMaxRules - 2;
  Result<Config> past = Config::parse(
      "domain: d\ndescriptors:\n  - key: a\n  - key: b\n  - key: c\n", "big.yaml", rules);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().message(),
            "big.yaml:5: more than 1000000 descriptors in the configuration");
}

// Ids as envoyproxy/ratelimit spells them can collide ("shop" + "cart.user" and "shop.cart" +
// "user"); identities cannot: every part is length-prefixed.
TEST(ConfigTest, EveryRuleHasAnIdentityNoOtherRuleShares) {
  Config c = parsed(
      "domain: api\ndescriptors:\n"
      "  - key: a\n    value: b_*\n    rate_limit: {unit: second, requests_per_unit: 1}\n"
      "  - key: a_b\n    value: \"*\"\n    rate_limit: {unit: second, requests_per_unit: 1}\n"
      "  - key: a_b\n    descriptors:\n      - key: c\n"
      "        rate_limit: {unit: second, requests_per_unit: 1}\n");
  const Domain* api = c.domain("api");
  ASSERT_NE(api, nullptr);
  ASSERT_EQ(api->descriptors.size(), 3u);
  EXPECT_EQ(api->descriptors[0].id, "api.a_b_*");
  EXPECT_EQ(api->descriptors[1].id, "api.a_b_*");
  EXPECT_EQ(api->descriptors[0].identity, "3:api/1:a=3:b_*");
  EXPECT_EQ(api->descriptors[1].identity, "3:api/3:a_b=1:*");
  EXPECT_EQ(api->descriptors[2].descriptors[0].identity, "3:api/3:a_b/1:c");
  Config shop = parsed("domain: shop\ndescriptors:\n  - key: cart.user\n");
  Config shop_cart = parsed("domain: shop.cart\ndescriptors:\n  - key: user\n");
  EXPECT_EQ(shop.domain("shop")->descriptors[0].id,
            shop_cart.domain("shop.cart")->descriptors[0].id);
  EXPECT_NE(shop.domain("shop")->descriptors[0].identity,
            shop_cart.domain("shop.cart")->descriptors[0].identity);
}

// The listing of /rlconfig: envoyproxy/ratelimit's line for each rule (its own test's expected
// line for `foo.k1_v1` verbatim), floodgate's extensions after it, depth first in file order.
TEST(ConfigTest, DumpListsEachRuleAsEnvoyRatelimitsRlconfigDoes) {
  Result<Config> foo = Config::parse(
      "domain: foo\ndescriptors:\n  - key: k1\n    value: v1\n"
      "    rate_limit: {unit: minute, requests_per_unit: 3}\n",
      "foo.yaml");
  ASSERT_TRUE(foo) << foo.error().message();
  EXPECT_EQ(foo->dump(),
            "foo.k1_v1: unit=MINUTE requests_per_unit=3, shadow_mode: false, quota_mode: false\n");
  Result<Config> api = Config::parse(
      "domain: api\ndescriptors:\n"
      "  - key: user\n    value: healthcheck\n    rate_limit: {unlimited: true}\n"
      "  - key: user\n    shadow_mode: true\n"
      "    rate_limit: {unit: second, requests_per_unit: 10, algorithm: gcra, burst: 20, name: u}\n"
      "    descriptors:\n      - key: path\n        quota_mode: true\n"
      "        rate_limit: {unit: day, requests_per_unit: 0, replaces: [{name: u}]}\n"
      "  - key: plan\n    descriptors:\n      - key: tier\n"
      "        rate_limit: {unit: hour, requests_per_unit: 7}\n",
      "api.yaml");
  ASSERT_TRUE(api) << api.error().message();
  EXPECT_EQ(
      api->dump(),
      "api.user_healthcheck: unit=UNKNOWN requests_per_unit=0, shadow_mode: false, "
      "quota_mode: false, unlimited: true\n"
      "api.user: unit=SECOND requests_per_unit=10, shadow_mode: true, quota_mode: false, "
      "algorithm: gcra, burst: 20, name: u\n"
      "api.user.path: unit=DAY requests_per_unit=0, shadow_mode: false, quota_mode: true, "
      "replaces: u\n"
      "api.plan.tier: unit=HOUR requests_per_unit=7, shadow_mode: false, quota_mode: false\n");
}

// What a reload's log line says changed: files, then rules by identity, with the fields that
// changed; what a start-up line says was loaded.
TEST(ConfigTest, AChangeIsDescribedByFileAndRule) {
  const auto parse = [](const char* file, const char* text) {
    Result<Config> c = Config::parse(text, file);
    EXPECT_TRUE(c) << c.error().message();
    return std::move(*c);
  };
  const Config before =
      parse("api.yaml",
            "domain: api\ndescriptors:\n"
            "  - key: ip\n    rate_limit: {unit: second, requests_per_unit: 5}\n"
            "  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 3}\n"
            "  - key: path\n    rate_limit: {unit: hour, requests_per_unit: 9}\n");
  const Config after = parse("api.yaml",
                             "domain: api\ndescriptors:\n"
                             "  - key: ip\n    rate_limit: {unit: second, requests_per_unit: 3}\n"
                             "  - key: user\n    shadow_mode: true\n"
                             "    rate_limit: {unit: minute, requests_per_unit: 3}\n"
                             "  - key: plan\n    rate_limit: {unit: day, requests_per_unit: 1}\n");
  EXPECT_EQ(describe_change(before, after),
            "files changed 1 (api.yaml); rules added 1 (api.plan); rules removed 1 (api.path); "
            "rules changed 2 (api.ip: requests_per_unit=5 -> requests_per_unit=3, api.user: "
            "shadow_mode: false -> shadow_mode: true)");
  EXPECT_EQ(describe_change(after, after), "nothing changed");
  EXPECT_EQ(describe_change(before, after, /*max_rules=*/2),
            "files changed 1 (api.yaml); rules: 3 before, 3 now (more than 2: not compared one by "
            "one)");
  EXPECT_EQ(describe_loaded(after), "1 file (api.yaml), 1 domain (api), 3 rules");
}

// A check reads on past errors: every file, and in a file every descriptor, so that one run names
// every mistake; each error is the one `load` gives for it alone.
TEST(ConfigTest, ACheckNamesEveryErrorOfEveryFile) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("floodgate-config-check-" +
                    std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, std::string_view text) {
    std::ofstream(dir / name) << text;
  };
  write("a.yaml",
        "domain: one\ndescriptors:\n"
        "  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n"
        "  - key: ok\n    rate_limit: {unit: second, requests_per_unit: 1}\n"
        "  - key: m\n    descriptors:\n"
        "      - key: n\n        rate_limit: {unit: second, requests_per_unit: -3}\n"
        "      - key: o\n        rate_limit: {unit: second, requests_per_units: 3}\n");
  write("b.yaml", "domain: two\ndescriptors:\n  - key: k\n\tvalue: tab\n");
  write("c.yaml",
        "domain: three\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
        "requests_per_unit: 1}\n");
  write("d.yaml", "domain: three\n");
  const ConfigCheck check = Config::check(dir.string());
  const std::string a = (dir / "a.yaml").string();
  EXPECT_EQ(check.files.size(), 4u);
  ASSERT_EQ(check.errors.size(), 5u) << ::testing::PrintToString(check.errors);
  EXPECT_EQ(check.errors[0].rfind(a + ":4: unit must be", 0), 0u) << check.errors[0];
  EXPECT_EQ(check.errors[1].rfind(a + ":10: requests_per_unit must be a whole number", 0), 0u)
      << check.errors[1];
  EXPECT_EQ(check.errors[2].rfind(a + ":12: rate_limit: unknown key \"requests_per_units\"", 0), 0u)
      << check.errors[2];
  EXPECT_EQ(check.errors[3].rfind((dir / "b.yaml").string() + ":", 0), 0u) << check.errors[3];
  EXPECT_EQ(check.errors[4], (dir / "d.yaml").string() +
                                 ": domain \"three\" is already defined in " +
                                 (dir / "c.yaml").string() + " (--merge-domains merges them)");
  // Each is what loading says, first error first.
  Result<Config> loaded = Config::load(dir.string());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message(), check.errors[0]);

  // Without errors: what was read.
  std::filesystem::remove(dir / "a.yaml");
  std::filesystem::remove(dir / "b.yaml");
  std::filesystem::remove(dir / "d.yaml");
  const ConfigCheck good = Config::check(dir.string());
  EXPECT_TRUE(good.errors.empty()) << ::testing::PrintToString(good.errors);
  EXPECT_EQ(good.domains, 1u);
  EXPECT_EQ(good.rules, 1u);
  EXPECT_EQ(Config::check((dir / "none").string()).errors,
            std::vector<std::string>{"config \"" + (dir / "none").string() + "\": cannot open"});
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, ADirectoryIsEveryYamlFileInItAndADomainLivesInOneFile) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("floodgate-config-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, std::string_view text) {
    std::ofstream(dir / name) << text;
  };
  write("a.yaml",
        "domain: one\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
        "requests_per_unit: 1}\n");
  write("b.yml",
        "domain: two\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, "
        "requests_per_unit: 2}\n");
  write("notes.txt", "not a config");
  Result<Config> c = Config::load(dir.string());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->domain_names(), (std::vector<std::string>{"one", "two"}));
  EXPECT_NE(c->match("two", std::vector<Entry>{{"k", "v"}}), nullptr);

  write("c.yaml", "domain: one\n");
  Result<Config> twice = Config::load(dir.string());
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message(),
            (dir / "c.yaml").string() + ": domain \"one\" is already defined in " +
                (dir / "a.yaml").string() + " (--merge-domains merges them)");
  // Merged (MERGE_DOMAIN_CONFIG): the domain has every file's descriptors, nested ones indexed.
  write("c.yaml",
        "domain: one\ndescriptors:\n  - key: m\n    descriptors:\n      - key: n\n"
        "        rate_limit: {unit: minute, requests_per_unit: 4}\n");
  Result<Config> merged = Config::load(dir.string(), /*merge_domains=*/true);
  ASSERT_TRUE(merged) << merged.error().message();
  EXPECT_EQ(merged->domain_names(), (std::vector<std::string>{"one", "two"}));
  EXPECT_NE(merged->match("one", std::vector<Entry>{{"k", "v"}}), nullptr);
  const Descriptor* nested = merged->match("one", std::vector<Entry>{{"m", "x"}, {"n", "y"}});
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->rate_limit->requests_per_unit, 4u);
  ASSERT_NE(nested->parent, nullptr);
  EXPECT_EQ(nested->parent->key, "m");
  // A descriptor both files define is an error, as upstream says it.
  write("c.yaml",
        "domain: one\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
        "requests_per_unit: 9}\n");
  Result<Config> clash = Config::load(dir.string(), /*merge_domains=*/true);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().message(), (dir / "c.yaml").string() +
                                         ":3: duplicate descriptor composite key \"one.k\" (first "
                                         "at " +
                                         (dir / "a.yaml").string() + ":3)");
  std::filesystem::remove_all(dir);

  // Entries named like configuration files that are not files are skipped and named.
  std::filesystem::create_directories(dir);
  write("a.yaml",
        "domain: one\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, "
        "requests_per_unit: 1}\n");
  std::filesystem::create_symlink(dir / "nowhere.txt", dir / "b.yaml");
  std::filesystem::create_directories(dir / "c.yaml");
  ASSERT_EQ(::mkfifo((dir / "d.yml").c_str(), 0600), 0);
  Result<Config> some = Config::load(dir.string());
  ASSERT_TRUE(some) << some.error().message();
  EXPECT_EQ(some->domain_names(), (std::vector<std::string>{"one"}));
  EXPECT_EQ(some->warnings(),
            (std::vector<std::string>{
                "config \"" + (dir / "b.yaml").string() +
                    "\": skipped, a symbolic link that leads to no file (dangling, or a loop)",
                "config \"" + (dir / "c.yaml").string() + "\": skipped, a directory",
                "config \"" + (dir / "d.yml").string() + "\": skipped, a FIFO"}));
  std::filesystem::remove(dir / "a.yaml");
  Result<Config> none = Config::load(dir.string());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(),
            "config \"" + dir.string() + "\": no .yaml or .yml files in it (config \"" +
                (dir / "b.yaml").string() +
                "\": skipped, a symbolic link that leads to no file (dangling, or a loop))");
  std::filesystem::remove_all(dir);

  // A missing file is named whole, however deep its folder.
  const std::string nope = (dir / std::string(150, 'd') / "nope.yaml").string();
  Result<Config> missing = Config::load(nope);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "config \"" + nope + "\": cannot open");
}

}  // namespace
}  // namespace floodgate::server
