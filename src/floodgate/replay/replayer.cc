#include "floodgate/replay/replayer.h"

#include <algorithm>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/rules.h"

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

}  // namespace

Result<Replayer> Replayer::create(Policy policy) {
  if (policy.max_keys == 0) return Error("max keys: must be at least 1 (got 0)");
  if (!has_burst(policy.algorithm)) {
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
  const Algorithm algorithm = policy.algorithm;
  return Replayer(with_rule(algorithm, [&]<class Rule>(Rule) -> std::unique_ptr<Engine> {
    return std::make_unique<KeyedEngine<Rule>>(std::move(policy));
  }));
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
