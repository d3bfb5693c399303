#include "floodgate/server/redis_backend.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace floodgate::server {
namespace {

// Decides `call` (its `hits` for `key`, 0: a check of `check_cost`) in Redis by `deadline`,
// under `quota` if given, counting a decision the failure policy made.
void decide_in_redis(RedisLimiter& limiter, std::string_view key, BackendCall& call,
                     std::uint64_t check_cost, std::chrono::steady_clock::time_point deadline,
                     const Quota* quota, ServiceMetrics& metrics) {
  RedisDecision d =
      quota == nullptr
          ? (call.hits == 0 ? limiter.peek_before(key, deadline, check_cost)
                            : limiter.try_acquire_before(key, deadline, call.hits))
          : (call.hits == 0
                 ? limiter.peek_with_quota_before(key, *quota, deadline, check_cost)
                 : limiter.try_acquire_with_quota_before(key, *quota, deadline, call.hits));
  call.failed = d.source != DecisionSource::Redis && d.source != DecisionSource::DenyCache;
  if (call.failed) metrics.policy_decision();
  call.decision = d.decision;
}

// A rule's limiter, what a check of it costs, and whether it counts in envoyproxy/ratelimit's
// keys.
struct RedisRuleState final : RuleState {
  RedisRuleState(std::shared_ptr<RedisLimiter> l, std::uint64_t cost, bool envoy)
      : limiter(std::move(l)), check_cost(cost), envoy_keys(envoy) {}
  const std::shared_ptr<RedisLimiter> limiter;
  const std::uint64_t check_cost;
  const bool envoy_keys;
};

// Returns the options every limiter of `o` shares: where Redis is, how to reach it, and how to
// answer when it does not.
RedisLimiterOptions limiter_options(const RedisBackendOptions& o) {
  RedisLimiterOptions l;
  l.url = o.url;
  l.on_failure = o.on_failure;
  l.command_timeout = o.command_timeout;
  l.tls_ca_file = o.tls_ca_file;
  l.tls_cert_file = o.tls_cert_file;
  l.tls_key_file = o.tls_key_file;
  l.tls_verify_hostname = o.tls_verify_hostname;
  l.password = o.password;
  return l;
}

}  // namespace

Result<std::shared_ptr<RedisBackend>> RedisBackend::create(RedisBackendOptions options,
                                                           ServiceMetrics* metrics) {
  RedisLimiterOptions health_options = limiter_options(options);
  health_options.prefix = options.cache_key_prefix + "floodgate-serve:health:";
  health_options.on_failure = OnRedisFailure::FailClosed;
  health_options.command_timeout =
      std::max(options.command_timeout, Nanos{std::chrono::milliseconds(100)});
  health_options.deny_cache_keys = 0;
  Result<std::unique_ptr<RedisLimiter>> health = RedisLimiter::create(std::move(health_options));
  if (!health) return health.error();
  // Descriptors' own limits: Envoy's window in envoyproxy/ratelimit's keys, each call with its
  // limit.
  RedisLimiterOptions own_options = limiter_options(options);
  own_options.prefix = options.cache_key_prefix;
  own_options.algorithm = Algorithm::EnvoyFixedWindow;
  own_options.default_quota = Quota::per_second(1);  // Every call gives its own.
  own_options.envoy_keys = true;
  Result<std::unique_ptr<RedisLimiter>> own =
      RedisLimiter::create(std::move(own_options), **health);
  if (!own) return Error("descriptors' own limits: " + own.error().message());
  std::shared_ptr<RedisLimiter> own_limits(std::move(*own));
  std::shared_ptr<RedisBackend> backend(
      new RedisBackend(std::move(options), metrics, std::move(*health), own_limits));
  backend->limiters_.push_back(own_limits);
  return backend;
}

Result<std::shared_ptr<RuleState>> RedisBackend::make_state(const Descriptor& rule) {
  const RateLimit& r = *rule.rate_limit;
  // Envoy's window in envoyproxy/ratelimit's keys (needs whole seconds: every unit is).
  const bool envoy = r.algorithm == Algorithm::EnvoyFixedWindow;
  RedisLimiterOptions o = limiter_options(options_);
  o.prefix = envoy ? options_.cache_key_prefix
                   : options_.cache_key_prefix + "floodgate-serve:" + definition_of(rule) + ":";
  o.algorithm = r.algorithm;
  o.default_quota = *r.quota();
  o.envoy_keys = envoy;
  // One pool and one breaker per server for every rule.
  Result<std::unique_ptr<RedisLimiter>> made = RedisLimiter::create(std::move(o), *health_);
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
      std::make_shared<RedisRuleState>(std::move(limiter), check_cost(r.algorithm), envoy));
}

void RedisBackend::decide(std::span<BackendCall> calls, Instant,
                          std::chrono::steady_clock::time_point deadline) {
  for (BackendCall& call : calls) {
    if (call.state != nullptr) {
      const auto& state = static_cast<const RedisRuleState&>(*call.state);
      if (state.envoy_keys) {
        decide_in_redis(*state.limiter, Config::envoy_key(call.domain, call.rule, call.entries),
                        call, state.check_cost, deadline, nullptr, *metrics_);
      } else {
        decide_in_redis(*state.limiter, call.key, call, state.check_cost, deadline, nullptr,
                        *metrics_);
      }
    } else {
      decide_in_redis(*own_limits_, Config::envoy_key(call.domain, nullptr, call.entries), call,
                      check_cost(Algorithm::EnvoyFixedWindow), deadline, &*call.own_limit,
                      *metrics_);
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
