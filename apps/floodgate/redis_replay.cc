#include "redis_replay.h"

#include <unistd.h>

#include <chrono>

#include "floodgate/redis/redis_limiter.h"

namespace floodgate::app {

class RedisReplay::Impl {
 public:
  Impl(std::unique_ptr<RedisLimiter> limiter, RedisReplayOptions options)
      : limiter_(std::move(limiter)), options_(std::move(options)) {}

  Result<Decided> decide(const replay::Request& request) {
    const RedisDecision d = options_.server_time
                                ? limiter_->try_acquire(request.key, request.cost)
                                : limiter_->try_acquire_at(request.key, request.time, request.cost);
    if (d.source != DecisionSource::Redis && d.source != DecisionSource::DenyCache) {
      return Error("redis " + quoted_redis_url(options_.url) + ": " + limiter_->last_error());
    }
    return Decided{d.decision, d.at};
  }

  std::string summary() const {
    const RedisLimiterStats s = limiter_->stats();
    return "redis " + quoted_redis_url(options_.url) + ", keys " + "\"" +
           limiter_->options().prefix + "\"" + "*: " + std::to_string(s.round_trips) +
           " round trips, " + std::to_string(s.deny_cache_hits) +
           " denials answered by the deny cache";
  }

 private:
  std::unique_ptr<RedisLimiter> limiter_;
  const RedisReplayOptions options_;
};

Result<std::unique_ptr<RedisReplay>> RedisReplay::create(const RedisReplayOptions& options,
                                                         const replay::Policy& policy) {
  const Algorithm algorithm = policy.algorithm;
  if (!runs_on_redis(algorithm)) {
    return Error("flag --redis: the algorithm \"" + std::string(to_string(algorithm)) +
                 "\" is decided in process only (Redis decides gcra, token-bucket and "
                 "envoy-fixed-window as the in-process replay does)");
  }
  std::string prefix = options.prefix;
  if (prefix.empty()) {
    // A run's own keys: a second replay must not find the first one's state.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    prefix = "floodgate-replay:" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count()) +
             ":";
  }
  RedisLimiterOptions o;
  o.url = options.url;
  o.prefix = prefix;
  o.algorithm = algorithm;
  o.default_quota = policy.quota;
  if (!policy.key_quotas.rules().empty()) {
    o.resolver = [rules = policy.key_quotas](std::string_view key) { return rules.match(key); };
  }
  o.on_failure = OnRedisFailure::FailClosed;
  // Throughput is not the point of a replay; an answer is.
  o.connect_timeout = std::chrono::seconds(2);
  o.command_timeout = std::chrono::seconds(2);
  // A trace denser than real time is replayed slower than it ran: keys must outlive their
  // buckets' refill on the trace's clock.
  if (!options.server_time) o.ttl_slack = std::chrono::hours(1);
  // At Redis's instants, every decision goes to Redis: the deny cache would answer at an
  // estimate of Redis's clock, and time_ns is to be Redis's own.
  if (options.server_time) o.deny_cache_keys = 0;
  Result<std::unique_ptr<RedisLimiter>> limiter = RedisLimiter::create(std::move(o));
  if (!limiter) return Error("flag --redis: " + limiter.error().message());
  if (Result<void> connected = (*limiter)->connect(std::chrono::seconds(2)); !connected) {
    return Error("flag --redis: " + quoted_redis_url(options.url) + ": " +
                 connected.error().message());
  }
  RedisReplayOptions kept = options;
  return std::unique_ptr<RedisReplay>(
      new RedisReplay(std::make_unique<Impl>(std::move(*limiter), std::move(kept))));
}

RedisReplay::RedisReplay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisReplay::~RedisReplay() = default;

Result<RedisReplay::Decided> RedisReplay::decide(const replay::Request& request) {
  return impl_->decide(request);
}

std::string RedisReplay::summary() const { return impl_->summary(); }

}  // namespace floodgate::app
