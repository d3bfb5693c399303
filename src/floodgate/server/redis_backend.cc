#include "floodgate/server/redis_backend.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>

namespace floodgate::server {
namespace {

// Decides `call` (its `hits` for `key`, 0: a check of `check_cost`) in Redis by `deadline`,
// counting a decision the failure policy made.
void decide_in_redis(RedisLimiter& limiter, std::string_view key, BackendCall& call,
                     std::uint64_t check_cost, std::chrono::steady_clock::time_point deadline,
                     ServiceMetrics& metrics) {
  const RedisDecision d = call.hits == 0 ? limiter.peek_before(key, deadline, check_cost)
                                         : limiter.try_acquire_before(key, deadline, call.hits);
  call.failed = d.source != DecisionSource::Redis && d.source != DecisionSource::DenyCache;
  if (call.failed) metrics.policy_decision();
  call.decision = d.decision;
}

// A rule's limiter, and what a check of it costs.
struct RedisRuleState final : RuleState {
  RedisRuleState(std::shared_ptr<RedisLimiter> l, std::uint64_t cost)
      : limiter(std::move(l)), check_cost(cost) {}
  const std::shared_ptr<RedisLimiter> limiter;
  const std::uint64_t check_cost;
};

// Returns the Redis key of a descriptor's own limit: its count, '/', then its `override_key`
// (which holds the unit). Envoy's window on Redis keeps one count per limit until it counts in
// envoyproxy/ratelimit's own keys.
std::string own_limit_key(const Quota& quota, std::string_view key) {
  return std::to_string(quota.count()) + "/" + std::string(key);
}

// Returns the quota an `own_limit_key` carries.
std::optional<Quota> quota_of_own_limit(std::string_view key) {
  std::uint64_t count = 0;
  const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), count);
  if (ec != std::errc() || end + 2 >= key.data() + key.size() || *end != '/') return std::nullopt;
  const int unit = end[1] - '0';
  if (unit < 0 || unit > static_cast<int>(Unit::Year) || end[2] != '|') return std::nullopt;
  Result<Quota> q = Quota::make(length_of(static_cast<Unit>(unit)), count, count);
  if (!q) return std::nullopt;
  return *q;
}

}  // namespace

Result<std::shared_ptr<RedisBackend>> RedisBackend::create(RedisBackendOptions options,
                                                           ServiceMetrics* metrics) {
  Result<std::unique_ptr<RedisLimiter>> health = RedisLimiter::create(
      {.url = options.url,
       .prefix = options.prefix + "health:",
       .on_failure = OnRedisFailure::FailClosed,
       .command_timeout = std::max(options.command_timeout, Nanos{std::chrono::milliseconds(100)}),
       .deny_cache_keys = 0,
       .password = options.password});
  if (!health) return health.error();
  // Descriptors' own limits: each key carries its limit (`own_limit_key`), which the resolver
  // reads back.
  Result<std::unique_ptr<RedisLimiter>> own = RedisLimiter::create(
      {.url = options.url,
       .prefix = options.prefix + "limit:",
       .algorithm = Algorithm::EnvoyFixedWindow,
       .default_quota = Quota::per_second(1),  // Every key carries its quota; never used.
       .resolver = &quota_of_own_limit,
       .on_failure = options.on_failure,
       .command_timeout = options.command_timeout,
       .password = options.password},
      **health);
  if (!own) return Error("descriptors' own limits: " + own.error().message());
  std::shared_ptr<RedisLimiter> own_limits(std::move(*own));
  std::shared_ptr<RedisBackend> backend(
      new RedisBackend(std::move(options), metrics, std::move(*health), own_limits));
  backend->limiters_.push_back(own_limits);
  return backend;
}

Result<std::shared_ptr<RuleState>> RedisBackend::make_state(const Descriptor& rule) {
  const RateLimit& r = *rule.rate_limit;
  Result<std::unique_ptr<RedisLimiter>> made =
      RedisLimiter::create({.url = options_.url,
                            .prefix = options_.prefix + definition_of(rule) + ":",
                            .algorithm = r.algorithm,
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
      std::make_shared<RedisRuleState>(std::move(limiter), check_cost(r.algorithm)));
}

void RedisBackend::decide(std::span<BackendCall> calls, Instant,
                          std::chrono::steady_clock::time_point deadline) {
  for (BackendCall& call : calls) {
    if (call.state != nullptr) {
      const auto& state = static_cast<const RedisRuleState&>(*call.state);
      decide_in_redis(*state.limiter, call.key, call, state.check_cost, deadline, *metrics_);
    } else {
      decide_in_redis(*own_limits_, own_limit_key(*call.own_limit, call.key), call,
                      check_cost(Algorithm::EnvoyFixedWindow), deadline, *metrics_);
    }
  }
}

std::uint64_t RedisBackend::errors() const {
  std::uint64_t n = 0;
  const std::lock_guard lock(mu_);
  for (const auto& w : limiters_) {
    if (const auto l = w.lock()) n += l->stats().errors;
  }
  return n;
}

Result<void> RedisBackend::connect(Nanos timeout) {
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

std::string RedisBackend::health() const {
  const RedisDecision d = health_->peek_at("check", Instant{});
  if (d.source == DecisionSource::Redis) return {};
  const std::string error = health_->last_error();
  return error.empty() ? "no answer" : error;
}

}  // namespace floodgate::server
