// RedisLimiter over TLS (rediss://) against a TLS-only redis-server of the test's own, with
// certificates the test makes with the openssl command: the server verified against its CA, a
// client certificate for a server that asks for one, an ACL user and password, and the errors
// when any of them is wrong.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;

class RedisTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !FLOODGATE_TEST_HAS_OPENSSL
    GTEST_SKIP() << "floodgate was built without OpenSSL (Debian's libssl-dev)";
#endif
    ASSERT_TRUE(certs_.ok()) << "openssl could not make the test's certificates";
    port_ = testing::free_port();
    server_ = testing::start_tls_redis(certs_, port_);
  }

  RedisLimiterOptions options() const {
    return {.url = "rediss://alice:s3cret@127.0.0.1:" + std::to_string(port_),
            .prefix = "tls:",
            .default_quota = Quota::per_hour(3),
            .on_failure = OnRedisFailure::FailClosed,
            .connect_timeout = 2s,
            .command_timeout = 2s,
            .deny_cache_keys = 0,
            .tls_ca_file = certs_["ca.crt"],
            .tls_cert_file = certs_["client.crt"],
            .tls_key_file = certs_["client.key"]};
  }

  // Returns the limiter for `o`, connected (the server may still be starting: tried for 10 s),
  // or the last error.
  std::string connect(std::unique_ptr<RedisLimiter>& limiter, RedisLimiterOptions o) {
    Result<std::unique_ptr<RedisLimiter>> made = RedisLimiter::create(std::move(o));
    if (!made) return made.error().message();
    limiter = std::move(*made);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string error;
    while (std::chrono::steady_clock::now() < deadline) {
      Result<void> up = limiter->connect(2s);
      if (up) return {};
      error = up.error().message();
      if (error.find("TLS") != std::string::npos || error.find("auth") != std::string::npos ||
          error.find("WRONGPASS") != std::string::npos) {
        return error;  // Not a server still starting: a refusal.
      }
      std::this_thread::sleep_for(50ms);
    }
    return error;
  }

  // Made once for every test (four RSA keys take a while), removed when the binary exits.
  static const testing::Certificates& certificates() {
    static const testing::Certificates made;
    return made;
  }
  const testing::Certificates& certs_ = certificates();
  int port_ = 0;
  std::unique_ptr<testing::Program> server_;
};

TEST_F(RedisTlsTest, DecidesOverTlsWithAClientCertificateAndAnAclUser) {
  std::unique_ptr<RedisLimiter> limiter;
  ASSERT_EQ(connect(limiter, options()), "");
  for (int i = 0; i < 4; ++i) {
    const RedisDecision d = limiter->try_acquire("k");
    ASSERT_EQ(d.source, DecisionSource::Redis) << limiter->last_error();
    EXPECT_EQ(d.allowed(), i < 3) << i;
  }
  // Envoy's window in envoyproxy/ratelimit's keys: plain commands over TLS too.
  RedisLimiterOptions envoy = options();
  envoy.algorithm = Algorithm::EnvoyFixedWindow;
  envoy.envoy_keys = true;
  std::unique_ptr<RedisLimiter> window;
  ASSERT_EQ(connect(window, envoy), "");
  const RedisDecision d = window->try_acquire("d_k_v_");
  ASSERT_EQ(d.source, DecisionSource::Redis) << window->last_error();
  EXPECT_EQ(d.decision.remaining(), 2u);
}

TEST_F(RedisTlsTest, AServerTheCaDidNotSignIsRefused) {
  RedisLimiterOptions o = options();
  o.tls_ca_file = certs_["other.crt"];
  std::unique_ptr<RedisLimiter> limiter;
  const std::string error = connect(limiter, o);
  EXPECT_NE(error.find("TLS handshake: the server's certificate"), std::string::npos) << error;
}

TEST_F(RedisTlsTest, AServerThatAsksForAClientCertificateRefusesACallWithout) {
  RedisLimiterOptions o = options();
  o.tls_cert_file.clear();
  o.tls_key_file.clear();
  std::unique_ptr<RedisLimiter> limiter;
  EXPECT_NE(connect(limiter, o), "");
}

TEST_F(RedisTlsTest, AWrongPasswordIsRefused) {
  RedisLimiterOptions o = options();
  o.url = "rediss://alice:wrong@127.0.0.1:" + std::to_string(port_);
  std::unique_ptr<RedisLimiter> limiter;
  const std::string error = connect(limiter, o);
  EXPECT_NE(error.find("WRONGPASS"), std::string::npos) << error;
  EXPECT_EQ(error.find("wrong"), std::string::npos) << "the password is never shown: " << error;
}

TEST_F(RedisTlsTest, BadTlsOptionsAreErrorsNamingTheFile) {
  RedisLimiterOptions o = options();
  o.tls_ca_file = "/nonexistent/ca.pem";
  Result<std::unique_ptr<RedisLimiter>> made = RedisLimiter::create(o);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("TLS CA file \"/nonexistent/ca.pem\""), std::string::npos)
      << made.error().message();
  o = options();
  o.url = "redis://127.0.0.1:" + std::to_string(port_);
  made = RedisLimiter::create(o);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("TLS files are given, but the URL is not rediss://"),
            std::string::npos);
  o = options();
  o.tls_key_file = certs_["other.key"];
  made = RedisLimiter::create(o);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("TLS key file \"" + certs_["other.key"] + "\""),
            std::string::npos)
      << made.error().message();
  EXPECT_NE(made.error().message().find("mismatch"), std::string::npos) << made.error().message();
}

}  // namespace
}  // namespace floodgate
