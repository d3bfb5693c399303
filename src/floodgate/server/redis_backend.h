// `RedisBackend`: limits in Redis, for `floodgate serve --redis`: one `RedisLimiter` per rule, and
// one for descriptors' own limits. Envoy's window counts in envoyproxy/ratelimit's own keys and
// way (INCRBY on domain_key_value_..._windowstart, on this host's clock), so a fleet can move
// from it to floodgate with both on one Redis; the other algorithms run their scripts on keys
// under a prefix naming the rule's definition, at Redis's clock. Every instance of the service
// shares one limit per descriptor. Every limiter runs on the health check's connections:
// one pool and one circuit breaker per server, however many rules. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/server/backend.h"
#include "floodgate/server/log.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

struct RedisBackendOptions {
  std::string url;
  std::string password = {};  // AUTH, when not in the URL (see `RedisLimiterOptions::password`).
  OnRedisFailure on_failure = OnRedisFailure::Fallback;
  // A Redis round trip longer than this is a failure (see `RedisLimiterOptions::command_timeout`).
  Nanos command_timeout = std::chrono::milliseconds(100);
  // Where a summary of the failure policy's decisions goes (their number by reason, and the
  // latest error; warn), at most once per `log_every` while there are any, and each change of
  // Redis's state: not deciding (error), breaker open (warn), deciding again (info). Null:
  // nowhere.
  Log log = nullptr;
  Nanos log_every = std::chrono::seconds(10);
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
  // Returns a backend for `options`, or an error naming a URL that does not parse.
  static Result<std::shared_ptr<RedisBackend>> create(RedisBackendOptions options);

  // A `RedisLimiter` of the rule's algorithm; an algorithm Redis does not decide is refused
  // with the rule's file and line.
  Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) override;

  // Decides every call in Redis in one round trip (one per server on a cluster), waiting no
  // later than `deadline`.
  void decide(std::span<BackendCall> calls, Instant now,
              std::chrono::steady_clock::time_point deadline) override;

  // Returns the calls on which Redis failed, over every limiter.
  std::uint64_t errors() const;

  // Returns the descriptors the failure policy decided, by `RedisFailure` (index 0, None, is 0).
  std::array<std::uint64_t, kRedisFailures> policy_decisions() const;

  // Connects the shared connections and loads the script of every algorithm in use
  // (`RedisLimiter::connect`), all within `timeout`: the first requests then make one round trip
  // each. Returns the first failure.
  Result<void> connect(Nanos timeout);

  // Asks Redis (one round trip, no write): empty when it answered, else why not.
  std::string health() const;

  // Whether Redis decided the latest call that reached for it (the health check's included):
  // false from a failure (no answer in time, unreachable, an error reply, an open breaker) to the
  // next answer. Before any call: whether `connect` succeeded.
  bool up() const { return link_.load(std::memory_order_relaxed) == Link::Up; }
  // Whether a server's circuit breaker keeps calls from being sent: from the first call it
  // refused in an outage to the next answer from Redis.
  bool breaker_open() const { return breaker_open_.load(std::memory_order_relaxed); }
  // Times a server's circuit breaker opened (it opens again after each failed trial call).
  std::uint64_t breaker_opens() const;
  // How long each `decide` waited for Redis, when it sent anything: one round trip per server,
  // and the wait for the connection's batch ahead, if any.
  const Histogram& round_trips() const { return round_trips_; }

 private:
  RedisBackend(RedisBackendOptions options, std::unique_ptr<RedisLimiter> health,
               std::shared_ptr<RedisLimiter> own_limits)
      : options_(std::move(options)),
        health_(std::move(health)),
        own_limits_(std::move(own_limits)) {}

  enum class Link : std::uint8_t { Unknown, Up, Down };

  // Counts the policy's decisions in `calls` (and logs them, at most once per `log_every`).
  void count_policy_decisions(std::span<const RedisCall> calls);
  // Follows Redis's state from the outcome of `calls`, and logs each change once: down (with the
  // error), breaker open, up again (after how long).
  void observe_link(std::span<const RedisCall> calls) const;
  // The same for one outcome: answered, or failed with `failure` (the last error of `failed`
  // says why; it is read only when the state changes).
  void observe_link(bool answered, RedisFailure failure, const RedisLimiter* failed) const;

  const RedisBackendOptions options_;
  std::array<std::atomic<std::uint64_t>, kRedisFailures> policy_decisions_{};
  std::mutex log_mu_;
  std::chrono::steady_clock::time_point logged_at_{};     // Guarded by log_mu_.
  std::array<std::uint64_t, kRedisFailures> unlogged_{};  // Guarded by log_mu_.
  std::unique_ptr<RedisLimiter> health_;
  const std::shared_ptr<RedisLimiter> own_limits_;
  Histogram round_trips_;
  mutable std::atomic<Link> link_{Link::Unknown};
  mutable std::atomic<bool> breaker_open_{false};
  mutable std::mutex link_mu_;  // Held to change link_ or breaker_open_, and to log it.
  mutable std::chrono::steady_clock::time_point down_since_{};  // Guarded by link_mu_.

  mutable std::mutex mu_;
  std::vector<std::weak_ptr<RedisLimiter>> limiters_;  // Guarded by mu_.
};

}  // namespace floodgate::server
