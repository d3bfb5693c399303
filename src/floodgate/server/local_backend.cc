// The in-process backend (backend.h): per rule a keyed limiter of its algorithm, made on first
// use, and one keyed limiter of Envoy's window for descriptors' own limits.
#include <atomic>
#include <memory>
#include <utility>

#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/rules.h"
#include "floodgate/server/backend.h"

namespace floodgate::server {
namespace {

// A `T` made on first use, so that a configuration of many rules costs memory only for the rules
// requests reach. Thread-safe: concurrent first uses race to publish one, with one CAS.
template <class T>
class MadeOnUse {
 public:
  MadeOnUse() = default;
  ~MadeOnUse() { delete made_.load(std::memory_order_acquire); }
  MadeOnUse(const MadeOnUse&) = delete;
  MadeOnUse& operator=(const MadeOnUse&) = delete;

  // Returns the `T`, made by `make()` if none is yet.
  template <class Make>
  T& get(Make make) {
    T* t = made_.load(std::memory_order_acquire);
    if (t != nullptr) return *t;
    auto fresh = make();
    if (made_.compare_exchange_strong(t, fresh.get(), std::memory_order_acq_rel)) {
      return *fresh.release();
    }
    return *t;  // Another thread's, published first.
  }

  // Returns the `T`, or null if none was made.
  const T* peek() const { return made_.load(std::memory_order_acquire); }

 private:
  std::atomic<T*> made_{nullptr};
};

// A rule's state in this process.
class LocalState : public RuleState {
 public:
  virtual Decision decide(std::string_view key, std::uint64_t hits, Instant now) = 0;
};

// A keyed limiter of the rule's algorithm and quota, made on first use.
template <class Rule>
class KeyedState final : public LocalState {
 public:
  KeyedState(const Quota& quota, std::uint64_t check_cost, std::size_t max_keys)
      : quota_(quota), check_cost_(check_cost), max_keys_(max_keys) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now) override {
    Limiter& limiter = limiter_.get([&] {
      return std::make_unique<Limiter>(
          typename Limiter::Options{.default_quota = quota_,
                                    .max_keys = max_keys_,
                                    .overflow = OverflowPolicy::AdmitUntracked});
    });
    if (hits == 0) return limiter.peek_at(key, now, check_cost_);
    return limiter.try_acquire_at(key, now, hits);
  }

  std::size_t tracked() const override {
    const Limiter* limiter = limiter_.peek();
    return limiter == nullptr ? 0 : limiter->stats().keys;
  }

 private:
  using Limiter = KeyedLimiter<std::string, Rule, SteadyClock>;
  const Quota quota_;
  const std::uint64_t check_cost_;
  const std::size_t max_keys_;
  MadeOnUse<Limiter> limiter_;
};

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(std::size_t max_keys)
      : max_keys_(max_keys),
        own_limits_({.default_quota = Quota::per_second(1),
                     .max_keys = max_keys,
                     .overflow = OverflowPolicy::AdmitUntracked}) {}

  Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) override {
    const Quota quota = *rule.rate_limit->quota();
    const Algorithm algorithm = rule.rate_limit->algorithm;
    return with_rule(algorithm, [&]<class Rule>(Rule) -> std::shared_ptr<RuleState> {
      return std::make_shared<KeyedState<Rule>>(quota, check_cost(algorithm), max_keys_);
    });
  }

  void decide(std::span<BackendCall> calls, Instant now,
              std::chrono::steady_clock::time_point) override {
    for (BackendCall& call : calls) {
      if (call.state != nullptr) {
        call.decision = static_cast<LocalState*>(call.state)->decide(call.key, call.hits, now);
      } else if (call.hits == 0) {
        call.decision = own_limits_.peek_with_quota_at(call.key, *call.own_limit, now, 0);
      } else {
        call.decision =
            own_limits_.try_acquire_with_quota_at(call.key, *call.own_limit, now, call.hits);
      }
    }
  }

  std::size_t own_limits_tracked() const override { return own_limits_.stats().keys; }
  std::uint64_t own_limits_untracked() const override {
    return own_limits_.stats().overflow_decisions;
  }

 private:
  const std::size_t max_keys_;
  // Envoy's window per (domain, descriptor, limit): the limit is in the key and given per call.
  KeyedLimiter<std::string, EnvoyFixedWindowRule, SteadyClock> own_limits_;
};

}  // namespace

std::shared_ptr<Backend> make_local_backend(std::size_t max_keys) {
  return std::make_shared<LocalBackend>(max_keys);
}

}  // namespace floodgate::server
