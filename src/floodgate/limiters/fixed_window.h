// `FixedWindowLimiter`: at most `limit` permits in each aligned window of length `period`, with
// the window and its count packed in one lock-free 64-bit word. Thread-safe; no method
// allocates, locks or throws.
//
// Reservations, blocking waits and `set_quota` are not offered. A reservation would take permits
// from a window that has not begun, so the state would need a count for every future window
// instead of one word; and a window is only meaningful for the period it was counted under. For
// waiting, use `retry_after()` (the start of the next window); for any of the three, use
// `GcraLimiter` or `TokenBucketLimiter`, which offer them.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/window_rules.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {

// Admits at most `quota.count()` permits in each window [k x period, (k + 1) x period) of the
// clock's time line; the count starts again at zero in each new window.
//
//   floodgate::FixedWindowLimiter limiter{floodgate::Quota::per_minute(100)};
//
// Semantics:
// - Bound: in every aligned window, the admitted cost is at most the limit. Windows are aligned
//   to the clock's epoch, not to the first call, so every process using the same clock agrees.
// - Bursts across a boundary: up to 2 x limit can pass within one period, the limit at the end
//   of one window and the limit again at the start of the next. Choose `GcraLimiter` when that
//   matters; fixed windows are for quotas that users read as "per calendar minute".
// - Stale time: a call whose instant falls in a window older than the newest one the limiter has
//   counted is denied (that window's count is gone), with `retry_after` the wait until the
//   newest window would take it. So a stale `now` never admits more than the bound.
// - Costs: 0 is admitted unless stale; above the limit is `ExceedsBurst`. `remaining()` is what
//   is left in the current window, and `reset_after()` the time to its end (zero if nothing was
//   counted in it). The quota's burst must equal its count (a fixed window has no other burst).
//
// An admission is one compare-and-swap; a denial is one load. The first call in a new window
// also divides by the period.
template <Clock C = SteadyClock>
class FixedWindowLimiter {
  using Rule = internal::FixedWindow;

 public:
  // Creates a limiter with an empty current window. Aborts if the quota's burst differs from its
  // count.
  explicit FixedWindowLimiter(Quota quota, C clock = C{}) noexcept
      : quota_(quota), params_(Rule::params(quota)), clock_(std::move(clock)) {
    FLOODGATE_CHECK(quota.burst() == quota.count(),
                    "FixedWindowLimiter: the quota's burst must equal its count");
    FLOODGATE_CHECK(Rule::fits(params_), "FixedWindowLimiter: window index does not fit");
  }

  FixedWindowLimiter(const FixedWindowLimiter&) = delete;
  FixedWindowLimiter& operator=(const FixedWindowLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if the current window has room.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if `now`'s window has room.
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    std::uint64_t state = state_.load(std::memory_order_acquire);
    while (true) {
      const Rule::Step step = Rule::acquire(state, now, cost, params_);
      if (step.state == state) return step.decision;
      if (state_.compare_exchange_weak(state, step.state, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return step.decision;
      }
    }
  }

  // Reports what `try_acquire(cost)` would decide now, without consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    return Rule::acquire(state_.load(std::memory_order_acquire), now, cost, params_).decision;
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  const Quota quota_;
  const Rule::Params params_;
  [[no_unique_address]] const C clock_;
  // The window (counted from the earliest one) and its count; see internal::FixedWindow.
  alignas(internal::kCacheLineSize) std::atomic<std::uint64_t> state_{Rule::kFull};
};

static_assert(RateLimiter<FixedWindowLimiter<>>);

// The fixed window (`FixedWindowLimiter`'s rule), for `KeyedLimiter`: a denial counts nothing.
struct FixedWindowRule {
  using Impl = internal::FixedWindow;
};

// envoyproxy/ratelimit's fixed window, for `KeyedLimiter`: at most `quota.count()` hits per
// aligned window, where every hit counts, denied ones included, so a client that keeps retrying
// stays over the limit until the window ends. A call whose window is older than the one counted
// is denied. `floodgate serve`'s default rule.
struct EnvoyFixedWindowRule {
  using Impl = internal::EnvoyFixedWindow;
};

}  // namespace floodgate
