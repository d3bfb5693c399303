// `RedisBackend`: limits in Redis, for `floodgate serve --redis`: one `RedisLimiter` per rule, and
// one for descriptors' own limits. Envoy's window counts in envoyproxy/ratelimit's own keys and
// way (INCRBY on domain_key_value_..._windowstart, on this host's clock), so a fleet can move
// from it to floodgate with both on one Redis; the other algorithms run their scripts on keys
// under a prefix naming the rule's definition, at Redis's clock. Every instance of the service
// shares one limit per descriptor. Every limiter runs on the health check's connections:
// one pool and one circuit breaker per server, however many rules. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/server/backend.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

struct RedisBackendOptions {
  std::string url;
  std::string password = {};  // AUTH, when not in the URL (see `RedisLimiterOptions::password`).
  OnRedisFailure on_failure = OnRedisFailure::Fallback;
  Nanos command_timeout = std::chrono::milliseconds(5);
  // Written before every key (envoyproxy/ratelimit's CACHE_KEY_PREFIX). Envoy's window (the
  // default algorithm, and every descriptor's own limit) counts in envoyproxy/ratelimit's keys,
  // `cache_key_prefix + Config::envoy_key + window start`, so that its instances and these share
  // counts on one Redis; the other algorithms' keys are
  // `cache_key_prefix + "floodgate-serve:" + definition_of(rule) + ":" + Config::state_key`.
  std::string cache_key_prefix = {};
  // TLS, for a rediss:// URL (see `RedisLimiterOptions::tls_ca_file`).
  std::string tls_ca_file = {};
  std::string tls_cert_file = {};
  std::string tls_key_file = {};
  bool tls_verify_hostname = true;
};

class RedisBackend final : public Backend {
 public:
  // Returns a backend for `options`, or an error naming a URL that does not parse. `metrics`
  // (not null, outliving it) counts decisions made by the failure policy.
  static Result<std::shared_ptr<RedisBackend>> create(RedisBackendOptions options,
                                                      ServiceMetrics* metrics);

  // A `RedisLimiter` of the rule's algorithm; an algorithm Redis does not decide is refused
  // with the rule's file and line.
  Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) override;

  // Decides each call in Redis, in turn, each waiting no later than `deadline`.
  void decide(std::span<BackendCall> calls, Instant now,
              std::chrono::steady_clock::time_point deadline) override;

  // Returns the calls on which Redis failed, over every limiter.
  std::uint64_t errors() const;

  // Connects the shared connections and loads the script of every algorithm in use
  // (`RedisLimiter::connect`), all within `timeout`: the first requests then make one round trip
  // each. Returns the first failure.
  Result<void> connect(Nanos timeout);

  // Asks Redis (one round trip, no write): empty when it answered, else why not.
  std::string health() const;

 private:
  RedisBackend(RedisBackendOptions options, ServiceMetrics* metrics,
               std::unique_ptr<RedisLimiter> health, std::shared_ptr<RedisLimiter> own_limits)
      : options_(std::move(options)),
        metrics_(metrics),
        health_(std::move(health)),
        own_limits_(std::move(own_limits)) {}

  const RedisBackendOptions options_;
  ServiceMetrics* const metrics_;
  std::unique_ptr<RedisLimiter> health_;
  const std::shared_ptr<RedisLimiter> own_limits_;
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<RedisLimiter>> limiters_;  // Guarded by mu_.
};

}  // namespace floodgate::server
