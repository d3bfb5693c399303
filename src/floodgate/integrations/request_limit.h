// `RequestLimit`: the one small concept through which floodgate's server integrations
// (`floodgate/integrations/httplib_limit.h`, ...) take any limit, and the adapters that make one of
// each kind of limiter:
//   - `one_limit(limiter)`: one limit shared by every request (`GcraLimiter`, `TokenBucketLimiter`,
//     any `RateLimiter`);
//   - `per_key(keyed)`: a limit per request key (`KeyedLimiter`, `RedisLimiter`: anything with
//     `try_acquire(key, cost)` and `quota_of(key)`).
// An adapter holds a reference to its limiter, which must outlive it. `decide` is const and may be
// called from any number of threads at once, as the limiter's own calls may.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"

namespace floodgate {

// A limit a server asks for each request: decide and take `cost` for the request's `key` now,
// and say the quota it advertises in the response's header fields.
template <class L>
concept RequestLimit = requires(const L& limit, std::string_view key, std::uint64_t cost) {
  { limit.decide(key, cost) } -> std::same_as<Decision>;
  { limit.quota(key) } -> std::same_as<Quota>;
};

namespace internal {

inline const Decision& decision_of(const Decision& decision) noexcept { return decision; }

// A decision with where it came from (`RedisDecision`): the decision.
template <class D>
requires requires(const D& d) {
  { d.decision } -> std::convertible_to<Decision>;
}
const Decision& decision_of(const D& d) noexcept { return d.decision; }

}  // namespace internal

// One limit shared by every request: see `one_limit`.
template <class Limiter>
class OneLimit {
 public:
  // Holds `limiter`, which must outlive it.
  explicit OneLimit(Limiter& limiter) noexcept : limiter_(&limiter) {}
  // Takes `cost` from the one limit, whatever the key.
  Decision decide(std::string_view /*key*/, std::uint64_t cost) const {
    return limiter_->try_acquire(cost);
  }
  // Returns the limiter's quota.
  Quota quota(std::string_view /*key*/) const { return limiter_->quota(); }

 private:
  Limiter* limiter_;
};

// Returns `limiter` as one limit for every request, whatever its key.
template <class Limiter>
requires requires(Limiter& l, std::uint64_t cost) {
  { l.try_acquire(cost) } -> std::same_as<Decision>;
  { l.quota() } -> std::same_as<Quota>;
}
OneLimit<Limiter> one_limit(Limiter& limiter) noexcept { return OneLimit<Limiter>(limiter); }

// A limit per request key: see `per_key`.
template <class Keyed>
class PerKey {
 public:
  // Holds `keyed`, which must outlive it.
  explicit PerKey(Keyed& keyed) noexcept : keyed_(&keyed) {}
  // Takes `cost` from `key`'s limit.
  Decision decide(std::string_view key, std::uint64_t cost) const {
    return internal::decision_of(keyed_->try_acquire(key, cost));
  }
  // Returns `key`'s quota.
  Quota quota(std::string_view key) const { return keyed_->quota_of(key); }

 private:
  Keyed* keyed_;
};

// Returns `keyed` as a limit per request key: `KeyedLimiter` (with string keys) or
// `RedisLimiter`.
template <class Keyed>
requires requires(Keyed& k, std::string_view key, std::uint64_t cost) {
  internal::decision_of(k.try_acquire(key, cost));
  { k.quota_of(key) } -> std::same_as<Quota>;
}
PerKey<Keyed> per_key(Keyed& keyed) noexcept { return PerKey<Keyed>(keyed); }

}  // namespace floodgate
