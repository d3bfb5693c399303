// Rule state in Redis, for `floodgate serve --redis`: one `RedisLimiter` per rule, its keys under
// a prefix naming the rule's definition, decided at Redis's clock so that every instance of the
// service shares one limit per descriptor. Every rule's limiter runs on the health check's
// connections: one pool and one circuit breaker per server, however many rules. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/service.h"

namespace floodgate::server {

struct RedisStateOptions {
  std::string url;
  std::string password = {};  // AUTH, when not in the URL (see `RedisLimiterOptions::password`).
  OnRedisFailure on_failure = OnRedisFailure::Fallback;
  Nanos command_timeout = std::chrono::milliseconds(5);
  std::string prefix = "floodgate-serve:";
};

// Makes rules' states in Redis and keeps count of them.
class RedisStates {
 public:
  // Returns the states' maker for `options`, or an error naming a URL that does not parse.
  // `metrics` (not null, outliving this) counts decisions made by the failure policy.
  static Result<std::unique_ptr<RedisStates>> create(RedisStateOptions options,
                                                     ServiceMetrics* metrics);

  // The factory for `ServiceOptions::make_state`. Sliding windows are refused: Redis decides
  // fixed-window, gcra and token-bucket.
  StateFactory factory();

  // The state of descriptors' own limits, for `ServiceOptions::override_state`: one fixed-window
  // limiter on the same connections, whose keys carry the unit and count
  // (`<prefix>limit:<unit><count>|<domain and entries>`).
  Result<std::shared_ptr<OverrideState>> override_state();

  // Returns the calls on which Redis failed, over every rule's limiter.
  std::uint64_t errors() const;

  // Connects the rules' shared connections and loads the script of every algorithm the rules
  // made so far use (`RedisLimiter::connect`), all within `timeout`: the first requests then
  // make one round trip each. Returns the first failure.
  Result<void> connect(Nanos timeout);

  // Asks Redis (one round trip, no write): empty when it answered, else why not.
  std::string health() const;

 private:
  RedisStates(RedisStateOptions options, ServiceMetrics* metrics,
              std::unique_ptr<RedisLimiter> health)
      : options_(std::move(options)), metrics_(metrics), health_(std::move(health)) {}

  const RedisStateOptions options_;
  ServiceMetrics* const metrics_;
  std::unique_ptr<RedisLimiter> health_;
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<RedisLimiter>> limiters_;  // Guarded by mu_.
};

}  // namespace floodgate::server
