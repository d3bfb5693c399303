// Sliding-window limiters: `SlidingWindowLogLimiter`, exact (at most `limit` in any window of
// length `period`, O(limit) memory), and `SlidingWindowCounterLimiter`, Cloudflare's two-counter
// approximation (O(1) memory, bounded over-admission). Both are thread-safe behind one
// `std::mutex` each; no method allocates on a denial or throws.
//
// Reservations, blocking waits and `set_quota` are not offered. The log could hold future
// entries, but every reservation would then cost memory until its window passed, and a change
// of period would reinterpret entries counted under the old one; the counter's two windows have
// the same problem. Use `retry_after()` to wait, or `GcraLimiter` / `TokenBucketLimiter`, which
// offer all three.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/window_rules.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {
namespace internal {

// The public side of a limiter whose state sits behind one mutex: the clock, the lock, and the
// `try_acquire`/`peek` family, delegating each decision to `Rule::decide`, which runs with the
// lock held (window_rules.h).
template <typename Rule, Clock C>
class LockedWindowLimiter {
 public:
  // Creates a limiter with empty windows. Aborts if the quota's burst differs from its count.
  explicit LockedWindowLimiter(Quota quota, C clock = C{})
      : quota_(checked(quota)), params_(Rule::params(quota)), clock_(std::move(clock)) {}

  LockedWindowLimiter(const LockedWindowLimiter&) = delete;
  LockedWindowLimiter& operator=(const LockedWindowLimiter&) = delete;

  // Admits `cost` at the clock's current instant if the window has room.
  Decision try_acquire(std::uint64_t cost = 1) { return try_acquire_at(clock_.now(), cost); }

  // Admits `cost` at `now` if the window has room.
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    return Rule::decide(value_, clamped_nanos(now), cost, params_, /*commit=*/true);
  }

  // Reports what `try_acquire(cost)` would decide now, without consuming anything.
  Decision peek(std::uint64_t cost = 1) const { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const {
    std::lock_guard<std::mutex> lock(mu_);
    return Rule::decide(value_, clamped_nanos(now), cost, params_, /*commit=*/false);
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  static const Quota& checked(const Quota& quota) {
    FLOODGATE_CHECK(quota.burst() == quota.count(),
                    std::string(Rule::kLimiter) + ": the quota's burst must equal its count");
    return quota;
  }

  const Quota quota_;
  const typename Rule::Params params_;
  mutable std::mutex mu_;
  mutable typename Rule::Value value_{};  // Guarded by mu_; empty at first.
  [[no_unique_address]] const C clock_;
};

}  // namespace internal

// Admits a call of cost n at instant t iff the cost admitted in every window of length `period`
// that contains t stays at most `quota.count()`: the exact sliding window, kept as a log of
// admissions.
//
//   floodgate::SlidingWindowLogLimiter limiter{floodgate::Quota::per_minute(100)};
//
// Semantics:
// - Bound: for every instant s, the cost admitted at instants in [s, s + period) is at most the
//   limit, whatever the order or staleness of the callers' instants: a call is checked against
//   every admission later than t - period, including ones at instants after its own.
// - Stale time: a call more than `period` older than the newest instant seen is denied, since the
//   log no longer holds its window; `retry_after` says when the newest window would take it.
// - Memory: the log holds at most 2 x limit entries (admissions within two periods of the newest
//   instant); an admission of cost n is one entry.
// - Costs: 0 is admitted unless stale; above the limit is `ExceedsBurst`.
//
// Hot-path cost: a mutex and a binary search of the log, O(log limit); an admission appends and
// drops expired entries, O(1) amortized. A stale admission, inserted before later ones, costs
// O(limit).
template <Clock C = SteadyClock>
using SlidingWindowLogLimiter = internal::LockedWindowLimiter<internal::SlidingLog, C>;

// Cloudflare's sliding-window counter: the count of the current aligned window plus the previous
// window's count weighted by how much of the sliding window still overlaps it,
//   estimate(t) = previous x (1 - (t - window_start) / period) + current,
// and a call of cost n is admitted iff estimate + n <= limit.
//
// Semantics:
// - Per aligned window at most `limit` (the estimate is never below the current count).
// - Over any sliding window of length `period`, at most limit + previous x f < 2 x limit, where f
//   is how far into the current window the sliding window reaches; traffic spread evenly over
//   the previous window admits about the limit. The worst case, every previous admission at the
//   very end of its window, approaches 2 x limit; `SlidingWindowLogLimiter` is exact.
// - Stale time: a call in a window older than the current one is denied, with `retry_after` the
//   wait until the current window would take it.
// - Memory: two counts and a window index.
//
// Each call takes a mutex and divides by the period once.
template <Clock C = SteadyClock>
using SlidingWindowCounterLimiter = internal::LockedWindowLimiter<internal::SlidingCounter, C>;

static_assert(RateLimiter<SlidingWindowLogLimiter<>>);
static_assert(RateLimiter<SlidingWindowCounterLimiter<>>);

// The sliding-window log (`SlidingWindowLogLimiter`'s rule), for `KeyedLimiter`.
struct SlidingLogRule {
  using Impl = internal::SlidingLog;
};

// The sliding-window counter (`SlidingWindowCounterLimiter`'s rule), for `KeyedLimiter`.
struct SlidingCounterRule {
  using Impl = internal::SlidingCounter;
};

}  // namespace floodgate
