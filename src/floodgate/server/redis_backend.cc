#include "floodgate/server/redis_backend.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace floodgate::server {
namespace {

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

Result<std::shared_ptr<RedisBackend>> RedisBackend::create(RedisBackendOptions options) {
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
      new RedisBackend(std::move(options), std::move(*health), own_limits));
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
  // Every call of the request in one `decide_all`: one round trip for all.
  thread_local std::vector<std::string> keys;
  thread_local std::vector<RedisCall> batch;
  keys.clear();
  batch.clear();
  keys.reserve(calls.size());  // `batch` points into it.
  for (const BackendCall& call : calls) {
    RedisCall r;
    r.cost = call.hits;
    if (call.state != nullptr) {
      const auto& state = static_cast<const RedisRuleState&>(*call.state);
      r.limiter = state.limiter.get();
      r.key = state.envoy_keys ? std::string_view(keys.emplace_back(
                                     Config::envoy_key(call.domain, call.rule, call.entries)))
                               : std::string_view(call.key);
      if (call.hits == 0) r.cost = state.check_cost;
    } else {
      r.limiter = own_limits_.get();
      r.key = keys.emplace_back(Config::envoy_key(call.domain, nullptr, call.entries));
      r.quota = &*call.own_limit;
      if (call.hits == 0) r.cost = check_cost(Algorithm::EnvoyFixedWindow);
    }
    r.peek = call.hits == 0;
    batch.push_back(r);
  }
  const auto start = std::chrono::steady_clock::now();
  RedisLimiter::decide_all(batch, deadline);
  const auto took = std::chrono::steady_clock::now() - start;
  bool sent = false;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    calls[i].decision = batch[i].decision.decision;
    calls[i].failed = batch[i].decision.failure != RedisFailure::None;
    sent = sent || batch[i].decision.source == DecisionSource::Redis ||
           batch[i].decision.failure == RedisFailure::Timeout ||
           batch[i].decision.failure == RedisFailure::ErrorReply;
  }
  if (sent) round_trips_.observe(took);
  count_policy_decisions(batch);
  observe_link(batch);
}

void RedisBackend::observe_link(std::span<const RedisCall> calls) const {
  RedisFailure failure = RedisFailure::None;
  const RedisCall* failed = nullptr;
  for (const RedisCall& call : calls) {
    if (call.decision.source == DecisionSource::Redis) return observe_link(true, {}, nullptr);
    const RedisFailure f = call.decision.failure;
    // A refusal by the breaker says the most; a deadline passed before sending says nothing.
    if (f == RedisFailure::None || f == RedisFailure::OutOfTime) continue;
    if (failed == nullptr || f == RedisFailure::BreakerOpen) {
      failure = f;
      failed = &call;
    }
  }
  if (failed != nullptr) observe_link(false, failure, failed->limiter);
}

void RedisBackend::observe_link(bool answered, RedisFailure failure,
                                const RedisLimiter* failed) const {
  const Link next = answered ? Link::Up : Link::Down;
  const bool breaker = failure == RedisFailure::BreakerOpen;
  if (link_.load(std::memory_order_relaxed) == next &&
      (answered || !breaker || breaker_open_.load(std::memory_order_relaxed))) {
    return;  // No change: the common case, without the lock.
  }
  std::vector<std::pair<LogLevel, std::string>> lines;
  {
    const std::lock_guard lock(link_mu_);
    const Link was = link_.load(std::memory_order_relaxed);
    const bool breaker_was = breaker_open_.load(std::memory_order_relaxed);
    const std::string at = "Redis at " + quoted_redis_url(options_.url);
    const std::string policy = "the failure policy (" +
                               std::string(to_string(options_.on_failure)) +
                               ") decides until it does";
    if (answered) {
      if (was == Link::Down) {
        char seconds[32];
        std::snprintf(
            seconds, sizeof seconds, "%.1f",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - down_since_).count());
        lines.emplace_back(LogLevel::Info,
                           at + " decides again, after " + seconds + " s" +
                               (breaker_was ? "; its circuit breaker is closed" : ""));
      }
      breaker_open_.store(false, std::memory_order_relaxed);
    } else {
      if (was != Link::Down) {
        down_since_ = std::chrono::steady_clock::now();
        const std::string error = failed != nullptr ? failed->last_error() : std::string();
        lines.emplace_back(LogLevel::Error,
                           at + " is not deciding (" + std::string(to_string(failure)) +
                               (error.empty() ? "" : ": " + error) + "); " + policy);
      }
      if (breaker && !breaker_was) {
        breaker_open_.store(true, std::memory_order_relaxed);
        lines.emplace_back(LogLevel::Warn,
                           at +
                               ": circuit breaker open after repeated failures; calls are not sent "
                               "to it for a while, and " +
                               policy);
      }
    }
    link_.store(next, std::memory_order_relaxed);
  }
  if (options_.log) {
    for (const auto& [level, text] : lines) options_.log(level, text);
  }
}

std::uint64_t RedisBackend::breaker_opens() const { return health_->stats().breaker_opens; }

void RedisBackend::count_policy_decisions(std::span<const RedisCall> calls) {
  std::size_t failed = 0;
  for (const RedisCall& call : calls) {
    if (call.decision.failure == RedisFailure::None) continue;
    ++failed;
    policy_decisions_[static_cast<std::size_t>(call.decision.failure)].fetch_add(
        1, std::memory_order_relaxed);
  }
  if (failed == 0 || !options_.log) return;
  std::string line;
  {
    const std::lock_guard lock(log_mu_);
    for (const RedisCall& call : calls)
      ++unlogged_[static_cast<std::size_t>(call.decision.failure)];
    const auto now = std::chrono::steady_clock::now();
    if (logged_at_ != std::chrono::steady_clock::time_point{} &&
        now - logged_at_ < options_.log_every) {
      return;
    }
    logged_at_ = now;
    std::uint64_t total = 0;
    std::string reasons;
    for (std::size_t i = 1; i < unlogged_.size(); ++i) {
      if (unlogged_[i] == 0) continue;
      total += unlogged_[i];
      reasons += (reasons.empty() ? "" : ", ") + std::string(to_string(RedisFailure(i))) + " " +
                 std::to_string(unlogged_[i]);
    }
    unlogged_ = {};
    line = "Redis failure policy (" + std::string(to_string(options_.on_failure)) + ") decided " +
           std::to_string(total) + " descriptor(s) since the last such line (" + reasons +
           "); the latest error: ";
  }
  const std::string error = health_->last_error();
  std::string latest;
  for (const RedisCall& call : calls) {
    if (call.decision.failure != RedisFailure::None) {
      latest = call.limiter->last_error();
      break;
    }
  }
  options_.log(LogLevel::Warn,
               line + (latest.empty() ? (error.empty() ? "none recorded" : error) : latest));
}

std::array<std::uint64_t, kRedisFailures> RedisBackend::policy_decisions() const {
  std::array<std::uint64_t, kRedisFailures> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = policy_decisions_[i].load(std::memory_order_relaxed);
  }
  return out;
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
  Result<void> up = health_->connect(timeout);
  for (std::size_t i = 0; up && i < live.size(); ++i) {
    const Nanos left = std::max(Nanos::zero(), Nanos{deadline - std::chrono::steady_clock::now()});
    up = live[i]->connect(left);
  }
  // The state Redis starts in; its caller says so, not the log of changes.
  const std::lock_guard lock(link_mu_);
  if (link_.load(std::memory_order_relaxed) == Link::Unknown) {
    link_.store(up ? Link::Up : Link::Down, std::memory_order_relaxed);
    down_since_ = std::chrono::steady_clock::now();
  }
  return up;
}

std::string RedisBackend::health() const {
  const RedisDecision d = health_->peek_at("check", Instant{});
  if (d.source == DecisionSource::Redis) {
    observe_link(true, {}, nullptr);
    return {};
  }
  if (d.failure != RedisFailure::OutOfTime) observe_link(false, d.failure, health_.get());
  const std::string error = health_->last_error();
  return error.empty() ? "no answer" : error;
}

}  // namespace floodgate::server
