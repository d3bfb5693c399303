#include "floodgate/server/redis_state.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace floodgate::server {
namespace {

// Decides `hits` for `key` in Redis by `deadline` (`hits` 0: a check of `check_cost`), counting
// a decision the failure policy made.
Decision decide_in_redis(RedisLimiter& limiter, std::string_view key, std::uint64_t hits,
                         std::uint64_t check_cost, std::chrono::steady_clock::time_point deadline,
                         ServiceMetrics& metrics) {
  const RedisDecision d = hits == 0 ? limiter.peek_before(key, deadline, check_cost)
                                    : limiter.try_acquire_before(key, deadline, hits);
  if (d.source != DecisionSource::Redis && d.source != DecisionSource::DenyCache) {
    metrics.policy_decision();
  }
  return d.decision;
}

class RedisRuleState final : public RuleState {
 public:
  RedisRuleState(std::shared_ptr<RedisLimiter> limiter, std::uint64_t check_cost,
                 ServiceMetrics* metrics)
      : limiter_(std::move(limiter)), check_cost_(check_cost), metrics_(metrics) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant,
                  std::chrono::steady_clock::time_point deadline) override {
    return decide_in_redis(*limiter_, key, hits, check_cost_, deadline, *metrics_);
  }

 private:
  std::shared_ptr<RedisLimiter> limiter_;
  const std::uint64_t check_cost_;
  ServiceMetrics* const metrics_;
};

// Descriptors' own limits: each key carries its limit (`override_key`), which the resolver reads
// back.
class RedisOverrideState final : public OverrideState {
 public:
  RedisOverrideState(std::shared_ptr<RedisLimiter> limiter, ServiceMetrics* metrics)
      : limiter_(std::move(limiter)), metrics_(metrics) {}

  Decision decide(std::string_view key, const Quota&, std::uint64_t hits, Instant,
                  std::chrono::steady_clock::time_point deadline) override {
    return decide_in_redis(*limiter_, key, hits, check_cost(Algorithm::EnvoyFixedWindow), deadline,
                           *metrics_);
  }

  // Returns the quota an `override_key` carries.
  static std::optional<Quota> quota_of(std::string_view key) {
    const std::optional<LimitOverride> limit = limit_of_override_key(key);
    if (!limit) return std::nullopt;
    Result<Quota> q =
        Quota::make(length_of(limit->unit), limit->requests_per_unit, limit->requests_per_unit);
    if (!q) return std::nullopt;
    return *q;
  }

 private:
  std::shared_ptr<RedisLimiter> limiter_;
  ServiceMetrics* const metrics_;
};

}  // namespace

Result<std::shared_ptr<OverrideState>> RedisStates::override_state() {
  Result<std::unique_ptr<RedisLimiter>> made =
      RedisLimiter::create({.url = options_.url,
                            .prefix = options_.prefix + "limit:",
                            .algorithm = Algorithm::EnvoyFixedWindow,
                            // Every key carries its quota; this one is never used.
                            .default_quota = Quota::per_second(1),
                            .resolver = &RedisOverrideState::quota_of,
                            .on_failure = options_.on_failure,
                            .command_timeout = options_.command_timeout,
                            .password = options_.password},
                           *health_);
  if (!made) return Error("descriptors' own limits: " + made.error().message());
  std::shared_ptr<RedisLimiter> limiter(std::move(*made));
  {
    const std::lock_guard lock(mu_);
    limiters_.push_back(limiter);
  }
  return std::shared_ptr<OverrideState>(
      std::make_shared<RedisOverrideState>(std::move(limiter), metrics_));
}

Result<std::unique_ptr<RedisStates>> RedisStates::create(RedisStateOptions options,
                                                         ServiceMetrics* metrics) {
  Result<std::unique_ptr<RedisLimiter>> health = RedisLimiter::create(
      {.url = options.url,
       .prefix = options.prefix + "health:",
       .on_failure = OnRedisFailure::FailClosed,
       .command_timeout = std::max(options.command_timeout, Nanos{std::chrono::milliseconds(100)}),
       .deny_cache_keys = 0,
       .password = options.password});
  if (!health) return health.error();
  return std::unique_ptr<RedisStates>(
      new RedisStates(std::move(options), metrics, std::move(*health)));
}

StateFactory RedisStates::factory() {
  return [this](const Descriptor& rule) -> Result<std::shared_ptr<RuleState>> {
    const RateLimit& r = *rule.rate_limit;
    const Algorithm algorithm = r.algorithm;
    Result<std::unique_ptr<RedisLimiter>> made =
        RedisLimiter::create({.url = options_.url,
                              .prefix = options_.prefix + definition_of(rule) + ":",
                              .algorithm = algorithm,
                              .default_quota = *r.quota(),
                              .on_failure = options_.on_failure,
                              .command_timeout = options_.command_timeout,
                              .password = options_.password},
                             *health_);  // One pool and one breaker per server for every rule.
    if (!made) {
      return Error(rule.file + ":" + std::to_string(rule.line) + ": rule " + rule.id + ": " +
                   made.error().message());
    }
    std::shared_ptr<RedisLimiter> limiter(std::move(*made));
    {
      const std::lock_guard lock(mu_);
      std::erase_if(limiters_, [](const auto& w) { return w.expired(); });
      limiters_.push_back(limiter);
    }
    return std::shared_ptr<RuleState>(
        std::make_shared<RedisRuleState>(std::move(limiter), check_cost(algorithm), metrics_));
  };
}

std::uint64_t RedisStates::errors() const {
  std::uint64_t n = 0;
  const std::lock_guard lock(mu_);
  for (const auto& w : limiters_) {
    if (const auto l = w.lock()) n += l->stats().errors;
  }
  return n;
}

Result<void> RedisStates::connect(Nanos timeout) {
  // Every limiter is on the health check's connections: connecting one per algorithm (its
  // script) is connecting them all, whatever the number of rules.
  std::vector<std::shared_ptr<RedisLimiter>> live;
  {
    const std::lock_guard lock(mu_);
    for (const auto& w : limiters_) {
      auto l = w.lock();
      if (l && std::none_of(live.begin(), live.end(), [&](const auto& seen) {
            return seen->options().algorithm == l->options().algorithm;
          })) {
        live.push_back(std::move(l));
      }
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (Result<void> up = health_->connect(timeout); !up) return up;
  for (const auto& limiter : live) {
    const Nanos left = std::max(Nanos::zero(), Nanos{deadline - std::chrono::steady_clock::now()});
    if (Result<void> up = limiter->connect(left); !up) return up;
  }
  return {};
}

std::string RedisStates::health() const {
  const RedisDecision d = health_->peek_at("check", Instant{});
  if (d.source == DecisionSource::Redis) return {};
  const std::string error = health_->last_error();
  return error.empty() ? "no answer" : error;
}

}  // namespace floodgate::server
