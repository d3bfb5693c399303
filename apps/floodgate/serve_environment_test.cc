#include "serve_environment.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace floodgate::app {
namespace {

using Env = std::map<std::string, std::string, std::less<>>;

Result<EnvoyEnvironment> read(const Env& env, std::set<std::string, std::less<>> given = {}) {
  return read_envoy_environment(given, [&env](std::string_view name) -> std::optional<std::string> {
    const auto found = env.find(name);
    if (found == env.end()) return std::nullopt;
    return found->second;
  });
}

std::map<std::string, std::string> flags_of(const EnvoyEnvironment& e) {
  return {e.flags.begin(), e.flags.end()};
}

// The settings of envoyproxy/ratelimit's own example deployment, read as the flags they stand for.
TEST(EnvoyEnvironmentTest, AnUpstreamDeploymentsSettingsBecomeFlags) {
  const Result<EnvoyEnvironment> e = read({{"RUNTIME_ROOT", "/data"},
                                           {"RUNTIME_SUBDIRECTORY", "ratelimit"},
                                           {"RUNTIME_WATCH_ROOT", "false"},
                                           {"GRPC_PORT", "18081"},
                                           {"PORT", "18080"},
                                           {"REDIS_SOCKET_TYPE", "tcp"},
                                           {"REDIS_URL", "redis:6379"},
                                           {"REDIS_AUTH", "s3cret"},
                                           {"SHADOW_MODE", "true"},
                                           {"QUOTA_MODE", "false"},
                                           {"LIMIT_RESPONSE_HEADERS_ENABLED", "1"},
                                           {"LIMIT_RESET_HEADER", "X-Reset"},
                                           {"NEAR_LIMIT_RATIO", "0.9"},
                                           {"CACHE_KEY_PREFIX", "rl_"},
                                           {"MERGE_DOMAIN_CONFIG", "True"},
                                           {"USE_STATSD", "false"}});
  ASSERT_TRUE(e) << e.error().message();
  const auto f = flags_of(*e);
  EXPECT_EQ(f.at("config"), "/data/ratelimit/config");
  EXPECT_EQ(f.at("grpc"), "0.0.0.0:18081");
  EXPECT_EQ(f.at("http"), "0.0.0.0:18080");
  EXPECT_EQ(f.at("redis"), "redis://redis:6379");
  EXPECT_EQ(e->redis_password, "s3cret") << "kept out of the flags";
  EXPECT_EQ(f.count("shadow-mode"), 1u);
  EXPECT_EQ(f.count("quota-mode"), 0u);
  EXPECT_EQ(f.count("response-headers"), 1u);
  EXPECT_EQ(f.at("reset-header"), "X-Reset");
  EXPECT_EQ(f.at("near-limit-ratio"), "0.9");
  EXPECT_EQ(f.at("cache-key-prefix"), "rl_");
  EXPECT_EQ(f.count("merge-domains"), 1u);
  EXPECT_TRUE(e->notes.empty()) << e->notes.front();
}

TEST(EnvoyEnvironmentTest, RedisTlsSettingsBecomeRedissAndItsFiles) {
  const Result<EnvoyEnvironment> e = read({{"REDIS_SOCKET_TYPE", "tcp"},
                                           {"REDIS_URL", "redis:6380"},
                                           {"REDIS_TLS", "true"},
                                           {"REDIS_TLS_CACERT", "/etc/ca.pem"},
                                           {"REDIS_TLS_CLIENT_CERT", "/etc/c.pem"},
                                           {"REDIS_TLS_CLIENT_KEY", "/etc/k.pem"},
                                           {"REDIS_TLS_SKIP_HOSTNAME_VERIFICATION", "true"}});
  ASSERT_TRUE(e) << e.error().message();
  const auto f = flags_of(*e);
  EXPECT_EQ(f.at("redis"), "rediss://redis:6380");
  EXPECT_EQ(f.at("redis-tls-ca"), "/etc/ca.pem");
  EXPECT_EQ(f.at("redis-tls-cert"), "/etc/c.pem");
  EXPECT_EQ(f.at("redis-tls-key"), "/etc/k.pem");
  EXPECT_EQ(f.count("redis-tls-skip-hostname-verification"), 1u);
}

TEST(EnvoyEnvironmentTest, FlagsWinOverTheEnvironment) {
  const Result<EnvoyEnvironment> e =
      read({{"GRPC_PORT", "18081"}, {"REDIS_URL", "/run/redis.sock"}, {"SHADOW_MODE", "true"}},
           {"grpc", "shadow-mode"});
  ASSERT_TRUE(e) << e.error().message();
  const auto f = flags_of(*e);
  EXPECT_EQ(f.count("grpc"), 0u);
  EXPECT_EQ(f.count("shadow-mode"), 0u);
  EXPECT_EQ(f.at("redis"), "unix:///run/redis.sock") << "upstream's default socket type is unix";
}

TEST(EnvoyEnvironmentTest, RedisDeploymentsAsUpstreamNamesThem) {
  Result<EnvoyEnvironment> e = read({{"REDIS_SOCKET_TYPE", "tcp"},
                                     {"REDIS_TYPE", "cluster"},
                                     {"REDIS_URL", "a:7000,b:7001"},
                                     {"REDIS_AUTH", "me:p@ss"}});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(flags_of(*e).at("redis"), "redis+cluster://me:p%40ss@a:7000,b:7001");
  EXPECT_FALSE(e->redis_password);
  e = read({{"REDIS_SOCKET_TYPE", "tcp"},
            {"REDIS_TYPE", "sentinel"},
            {"REDIS_URL", "mymaster,a:26379,b:26380"}});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(flags_of(*e).at("redis"), "redis+sentinel://a:26379,b:26380/mymaster");
  e = read({{"REDIS_TYPE", "sentinel"}, {"REDIS_URL", "a:26379"}});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "environment REDIS_URL=\"a:26379\": with REDIS_TYPE=sentinel, "
            "master-name,host:port[,host:port...]");
  e = read({{"REDIS_TYPE", "ring"}, {"REDIS_URL", "x"}});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "environment REDIS_TYPE=\"ring\": not single, cluster or sentinel");
}

// What floodgate does not support is named: an error when ignoring it changes what is limited or
// where, a note otherwise; a setting at its harmless value says nothing.
TEST(EnvoyEnvironmentTest, WhatIsNotSupportedIsNamedNeverSilentlyIgnored) {
  Result<EnvoyEnvironment> e = read({{"REDIS_SENTINEL_AUTH", "pw"}});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "environment REDIS_SENTINEL_AUTH=\"pw\": a password for the Sentinels themselves is "
            "not supported yet");
  e = read({{"BACKEND_TYPE", "memcache"}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("memcache is not supported"), std::string::npos);
  e = read({{"BACKEND_TYPE", "redis"},
            {"REDIS_TLS", "false"},
            {"USE_STATSD", "true"},
            {"LOG_LEVEL", "debug"},
            {"REDIS_POOL_SIZE", "20"}});
  ASSERT_TRUE(e) << e.error().message();
  ASSERT_EQ(e->notes.size(), 3u);
  EXPECT_EQ(e->notes[0],
            "environment USE_STATSD=\"true\": not applied (statsd is not supported; the same "
            "counters are at GET /metrics (Prometheus))");
  EXPECT_NE(e->notes[1].find("LOG_LEVEL"), std::string::npos);
  EXPECT_NE(e->notes[2].find("REDIS_POOL_SIZE"), std::string::npos);
  // A header name without LIMIT_RESPONSE_HEADERS_ENABLED does nothing, and says so.
  e = read({{"LIMIT_LIMIT_HEADER", "X-Limit"}});
  ASSERT_TRUE(e);
  ASSERT_EQ(e->notes.size(), 1u);
  EXPECT_NE(e->notes[0].find("LIMIT_RESPONSE_HEADERS_ENABLED is not true"), std::string::npos);
}

TEST(EnvoyEnvironmentTest, MalformedValuesAreErrorsNamingTheVariable) {
  const std::map<std::string, std::string> cases = {
      {"GRPC_PORT", "environment GRPC_PORT=\"x\": not a port from 0 to 65535"},
      {"SHADOW_MODE", "environment SHADOW_MODE=\"x\": not true or false"},
      {"NEAR_LIMIT_RATIO",
       "environment NEAR_LIMIT_RATIO=\"x\": \"x\" is not a decimal number "
       "from 0 to 1"},
      {"LIMIT_RESET_HEADER", "environment LIMIT_RESET_HEADER=\"x\": "},
      {"RUNTIME_WATCH_ROOT", "environment RUNTIME_WATCH_ROOT=\"x\": not true or false"},
  };
  for (const auto& [name, message] : cases) {
    const std::string value = name == "LIMIT_RESET_HEADER" ? "a b" : "x";
    Result<EnvoyEnvironment> e = read({{name, value}});
    if (name == "LIMIT_RESET_HEADER") {
      ASSERT_FALSE(e) << name;
      EXPECT_NE(e.error().message().find("is not an HTTP header name"), std::string::npos);
      continue;
    }
    ASSERT_FALSE(e) << name;
    EXPECT_EQ(e.error().message(), message);
  }
}

}  // namespace
}  // namespace floodgate::app
