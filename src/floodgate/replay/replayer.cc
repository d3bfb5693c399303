#include "floodgate/replay/replayer.h"

#include <string>
#include <unordered_map>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/fixed_window.h"
#include "floodgate/limiters/sliding_window.h"

namespace floodgate::replay {

class Replayer::Engine {
 public:
  explicit Engine(Policy policy) : policy_(std::move(policy)) {}
  virtual ~Engine() = default;
  virtual Decision decide(const Request& request) = 0;
  virtual ReplayStats stats() const = 0;
  virtual void sweep() = 0;

  Quota quota_of(std::string_view key) const {
    return policy_.key_quotas.match(key).value_or(policy_.quota);
  }
  const Policy& policy() const noexcept { return policy_; }

 private:
  Policy policy_;
};

namespace {

// The clock of a replay's limiters: every call passes the trace's instant, so it is never read.
// (A ManualClock per key would cost a shared state and a condition variable each.)
struct TraceClock {
  Instant now() const noexcept { return Instant{}; }
};
static_assert(Clock<TraceClock>);

// Any fixed seed: a replay must not depend on a random one.
constexpr std::uint64_t kReplayHashSeed = 0x666c6f6f64676174;  // "floodgat"

template <class Rule>
class KeyedEngine final : public Replayer::Engine {
 public:
  explicit KeyedEngine(Policy policy)
      : Engine(std::move(policy)),
        keyed_({.default_quota = this->policy().quota,
                .max_keys = this->policy().max_keys,
                .resolver =
                    [this](std::string_view key) { return this->policy().key_quotas.match(key); },
                .hash_seed = kReplayHashSeed}) {}

  Decision decide(const Request& request) override {
    latest_ = std::max(latest_, request.time);
    return keyed_.try_acquire_at(request.key, request.time, request.cost);
  }

  void sweep() override { (void)keyed_.sweep(latest_); }

  ReplayStats stats() const override {
    const KeyedLimiterStats s = keyed_.stats();
    return {s.keys, s.overflow_decisions};
  }

 private:
  KeyedLimiter<std::string, Rule, TraceClock> keyed_;
  Instant latest_{Nanos{-internal::kTimeLimit}};
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class Limiter>
class WindowEngine final : public Replayer::Engine {
 public:
  explicit WindowEngine(Policy policy) : Engine(std::move(policy)) {}

  Decision decide(const Request& request) override {
    const std::int64_t t = internal::clamped_nanos(request.time);
    latest_ = std::max(latest_, t);
    auto it = limiters_.find(request.key);
    if (it == limiters_.end()) {
      const Quota quota = quota_of(request.key);
      it = limiters_.try_emplace(std::string(request.key), quota).first;
    }
    Entry& entry = it->second;
    entry.last = std::max(entry.last, t);
    const Decision decision = entry.limiter.try_acquire_at(request.time, request.cost);
    if (limiters_.size() >= next_sweep_) {
      // Amortized: the map at most doubles between sweeps of its idle keys.
      sweep();
      next_sweep_ = std::max<std::size_t>(kMinSweep, 2 * limiters_.size());
    }
    return decision;
  }

  ReplayStats stats() const override { return {limiters_.size(), 0}; }

  // Drops keys whose last request is two periods old: every window they counted in is over.
  void sweep() override {
    if (latest_ == INT64_MIN) return;  // Nothing decided yet.
    std::erase_if(limiters_, [&](const auto& item) {
      const Entry& e = item.second;
      return e.last <= latest_ - 2 * e.limiter.quota().period().count();
    });
  }

 private:
  static constexpr std::size_t kMinSweep = 1024;

  struct Entry {
    explicit Entry(const Quota& quota) : limiter(quota) {}
    Limiter limiter;
    std::int64_t last = INT64_MIN;
  };

  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> limiters_;
  std::int64_t latest_ = INT64_MIN;
  std::size_t next_sweep_ = kMinSweep;
};

std::unique_ptr<Replayer::Engine> make_engine(Policy policy) {
  switch (policy.algorithm) {
    case Algorithm::Gcra:
      return std::make_unique<KeyedEngine<GcraRule>>(std::move(policy));
    case Algorithm::TokenBucket:
      return std::make_unique<KeyedEngine<TokenBucketRule>>(std::move(policy));
    case Algorithm::FixedWindow:
      return std::make_unique<WindowEngine<FixedWindowLimiter<TraceClock>>>(std::move(policy));
    case Algorithm::SlidingLog:
      return std::make_unique<WindowEngine<SlidingWindowLogLimiter<TraceClock>>>(std::move(policy));
    case Algorithm::SlidingCounter:
      return std::make_unique<WindowEngine<SlidingWindowCounterLimiter<TraceClock>>>(
          std::move(policy));
  }
  return nullptr;
}

bool is_window(Algorithm algorithm) {
  return algorithm == Algorithm::FixedWindow || algorithm == Algorithm::SlidingLog ||
         algorithm == Algorithm::SlidingCounter;
}

}  // namespace

Result<Algorithm> parse_algorithm(std::string_view name) {
  for (const Algorithm a : {Algorithm::Gcra, Algorithm::TokenBucket, Algorithm::FixedWindow,
                            Algorithm::SlidingLog, Algorithm::SlidingCounter}) {
    if (name == to_string(a)) return a;
  }
  return Error("algorithm \"" + std::string(name) +
               "\": must be one of gcra, token-bucket, fixed-window, sliding-log, "
               "sliding-counter");
}

std::string_view to_string(Algorithm algorithm) noexcept {
  switch (algorithm) {
    case Algorithm::Gcra:
      return "gcra";
    case Algorithm::TokenBucket:
      return "token-bucket";
    case Algorithm::FixedWindow:
      return "fixed-window";
    case Algorithm::SlidingLog:
      return "sliding-log";
    case Algorithm::SlidingCounter:
      return "sliding-counter";
  }
  return "?";
}

Result<Replayer> Replayer::create(Policy policy) {
  if (policy.max_keys == 0) return Error("max keys: must be at least 1 (got 0)");
  if (is_window(policy.algorithm)) {
    const auto check = [&](const Quota& quota, const std::string& what) -> std::optional<Error> {
      if (quota.burst() == quota.count()) return std::nullopt;
      return Error(what + " " + quota.to_string() + ": algorithm " +
                   std::string(to_string(policy.algorithm)) +
                   " has no burst of its own; the burst must equal the count (got burst " +
                   std::to_string(quota.burst()) + " for " + std::to_string(quota.count()) +
                   " per period)");
    };
    if (auto error = check(policy.quota, "quota")) return *error;
    for (const KeyQuotaRule& rule : policy.key_quotas.rules()) {
      if (auto error = check(rule.quota, "pattern \"" + rule.pattern + "\": quota")) return *error;
    }
  }
  return Replayer(make_engine(std::move(policy)));
}

Replayer::Replayer(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
Replayer::Replayer(Replayer&&) noexcept = default;
Replayer& Replayer::operator=(Replayer&&) noexcept = default;
Replayer::~Replayer() = default;

Decision Replayer::decide(const Request& request) { return engine_->decide(request); }
Quota Replayer::quota_of(std::string_view key) const { return engine_->quota_of(key); }
ReplayStats Replayer::stats() const { return engine_->stats(); }
std::uint64_t Replayer::sweep() {
  engine_->sweep();
  return engine_->stats().keys_now;
}
const Policy& Replayer::policy() const noexcept { return engine_->policy(); }

}  // namespace floodgate::replay
