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
#include <bit>
#include <cstdint>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
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
 public:
  // Creates a limiter with an empty current window. Aborts if the quota's burst differs from its
  // count.
  explicit FixedWindowLimiter(Quota quota, C clock = C{}) noexcept
      : quota_(quota),
        period_(quota.period().count()),
        limit_(quota.count()),
        count_bits_(static_cast<unsigned>(std::bit_width(quota.count()))),
        first_window_(internal::floor_div(-internal::kTimeLimit, period_)),
        clock_(std::move(clock)) {
    FLOODGATE_CHECK(quota.burst() == quota.count(),
                    "FixedWindowLimiter: the quota's burst must equal its count");
    // The window index fits beside the count: the quota's rule count <= period bounds the bits.
    FLOODGATE_CHECK(
        static_cast<std::uint64_t>(internal::floor_div(internal::kTimeLimit, period_) -
                                   first_window_) < (std::uint64_t{1} << (64 - count_bits_)),
        "FixedWindowLimiter: window index does not fit");
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
      const Step step = decide(state, now, cost);
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
    return decide(state_.load(std::memory_order_acquire), now, cost).decision;
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  struct Step {
    Decision decision;
    std::uint64_t state;
  };

  Step decide(std::uint64_t state, Instant now, std::uint64_t cost) const noexcept {
    const std::int64_t t = internal::clamped_nanos(now);
    const std::uint64_t mask = (std::uint64_t{1} << count_bits_) - 1;
    // The state 0 is "window first_window_, count 0": empty for every window a call can name.
    const std::uint64_t seen = state >> count_bits_;
    // Most calls fall in the window the state holds: a multiplication tells, and only the others
    // pay for a division.
    const std::int64_t seen_start = (static_cast<std::int64_t>(seen) + first_window_) * period_;
    // The difference in unsigned arithmetic: t - seen_start can pass INT64_MAX (an instant near
    // the end of the range against the first window), and only [0, period) matters.
    const std::uint64_t offset =
        static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(seen_start) <
                static_cast<std::uint64_t>(period_)
            ? seen
            : static_cast<std::uint64_t>(internal::floor_div(t, period_) - first_window_);
    const std::uint64_t counted = offset == seen ? state & mask : 0;
    // Time from `now` to the start of window `w` (an offset like `offset`), which is later: a
    // stale `t` may be more than 2^63 ns before it.
    const auto until_window = [&](std::uint64_t w) {
      const std::int64_t start = (static_cast<std::int64_t>(w) + first_window_) * period_;
      return internal::wait_until(start, t);
    };
    const std::int64_t left = static_cast<std::int64_t>(limit_ - counted);
    if (offset < seen) {
      // A stale call: its window's count is gone. It may retry in the newest window.
      const std::uint64_t newest = state & mask;
      const bool fits = cost <= limit_ && newest + cost <= limit_;
      return {Decision(cost > limit_ ? Verdict::ExceedsBurst : Verdict::Denied, limit_, 0, 1,
                       cost > limit_ ? kNever : until_window(fits ? seen : seen + 1),
                       until_window(seen + 1)),
              state};
    }
    const Nanos reset = counted == 0 ? Nanos::zero() : until_window(offset + 1);
    if (cost > limit_) [[unlikely]] {
      return {Decision(Verdict::ExceedsBurst, limit_, left, 1, kNever, reset), state};
    }
    if (counted + cost > limit_) {
      return {Decision(Verdict::Denied, limit_, left, 1, until_window(offset + 1), reset), state};
    }
    if (cost == 0)
      return {Decision(Verdict::Allowed, limit_, left, 1, Nanos::zero(), reset), state};
    return {Decision(Verdict::Allowed, limit_, left - static_cast<std::int64_t>(cost), 1,
                     Nanos::zero(), until_window(offset + 1)),
            (offset << count_bits_) | (counted + cost)};
  }

  const Quota quota_;
  const std::int64_t period_;
  const std::uint64_t limit_;
  const unsigned count_bits_;
  const std::int64_t first_window_;  // The window of the earliest instant a limiter accepts.
  [[no_unique_address]] const C clock_;
  // (window - first_window_) << count_bits_ | count in that window.
  alignas(internal::kCacheLineSize) std::atomic<std::uint64_t> state_{0};
};

static_assert(RateLimiter<FixedWindowLimiter<>>);

}  // namespace floodgate
