// `TokenBucketLimiter`: golang.org/x/time/rate's model (a real-valued rate and a burst, starting
// full) in one lock-free 64-bit word. Thread-safe; no method allocates, locks or throws.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>
#include <utility>

#include "floodgate/core/check.h"
#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate {

// A token bucket of `quota.burst()` tokens, initially full, refilled continuously at
// `quota.count()` per `quota.period()` (a real-valued rate, so 1 per 3 s is exact up to floating
// point). A call of cost n at instant t is admitted iff at least n tokens are in the bucket at t.
//
//   floodgate::TokenBucketLimiter limiter{floodgate::Quota::per(std::chrono::seconds(3), 1)};
//   limiter.tokens_at(now);  // 1.0, then 0.0 after an admission, then refilling at 1/3 per s.
//
// Semantics:
// - The same decisions as golang.org/x/time/rate's `AllowN(t, n)` with `Limit` = count / period
//   in events per second and the same burst, on any trace with non-decreasing instants, except
//   where a token count lands within floating-point rounding of a whole number.
// - Stale and out-of-order time: unlike x/time/rate (golang/go#71360), never a reason to admit
//   more. The state is the instant at which the bucket was empty (tokens at t = min(burst,
//   (t - empty_at) x rate)); it only moves forwards, so a stale `now` sees no more tokens than a
//   current one, and in every window [t1, t2] of caller instants the admitted cost is at most
//   burst + rate x (t2 - t1).
// - Costs: 0 is always admitted unless the bucket is in debt at a stale `now`; a cost above the
//   burst is `ExceedsBurst`. Instants are clamped as in floodgate/core/time.h.
// - Precision: the state is a double of nanoseconds; its resolution is below 1 ns for instants up
//   to about 52 days from the clock's epoch and about 8 ns after 2 years of uptime, which moves a
//   decision only for calls within that margin of a token boundary.
//
// Hot-path cost: an admission is one load and one compare-and-swap (a plain store while the
// process is single-threaded; see floodgate/core/concurrency.h); a denial is one load.
template <Clock C = SteadyClock>
class TokenBucketLimiter {
 public:
  // Creates a full bucket of `quota.burst()` tokens refilled at count per period.
  explicit TokenBucketLimiter(Quota quota, C clock = C{}) noexcept
      : quota_(quota),
        rate_per_ns_(static_cast<double>(quota.count()) /
                     static_cast<double>(quota.period().count())),
        ns_per_token_(static_cast<double>(quota.period().count()) /
                      static_cast<double>(quota.count())),
        burst_(static_cast<double>(quota.burst())),
        clock_(std::move(clock)) {}

  TokenBucketLimiter(const TokenBucketLimiter&) = delete;
  TokenBucketLimiter& operator=(const TokenBucketLimiter&) = delete;

  // Admits `cost` tokens at the clock's current instant if the bucket holds them.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` tokens at `now` if the bucket holds them.
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    std::uint64_t bits = state_.load(std::memory_order_acquire);
    while (true) {
      const Step step = decide(std::bit_cast<double>(bits), now, cost);
      if (!step.decision.allowed() || cost == 0) return step.decision;
      const std::uint64_t next = std::bit_cast<std::uint64_t>(step.empty_at);
      if (internal::commit_word(state_, bits, next)) return step.decision;
    }
  }

  // Reports what `try_acquire(cost)` would decide now, without consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    return decide(std::bit_cast<double>(state_.load(std::memory_order_acquire)), now, cost)
        .decision;
  }

  // Returns the tokens in the bucket at `now` (possibly fractional; x/time/rate's `TokensAt`).
  double tokens_at(Instant now) const noexcept {
    return tokens(std::bit_cast<double>(state_.load(std::memory_order_acquire)),
                  static_cast<double>(internal::clamped_nanos(now)));
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

 private:
  struct Step {
    Decision decision;
    double empty_at;
  };

  // Token counts this close to a whole number count as it: floating-point error in a refill must
  // not turn 3 tokens into 2.9999999997 and deny a cost of 3 (x/time/rate does, golang/go#46579).
  static constexpr double kTolerance = 1e-9;

  double tokens(double empty_at, double t) const noexcept {
    // empty_at starts at -infinity: a full bucket at any instant.
    const double elapsed = t - empty_at;
    if (elapsed <= 0) return 0.0;
    const double refilled = elapsed * rate_per_ns_;
    return refilled >= burst_ - kTolerance ? burst_ : refilled;
  }

  // Returns a non-negative duration in nanoseconds, rounded up (waits are never reported
  // short) and saturated at `kNever`.
  static Nanos ceil_nanos(double ns) noexcept {
    if (!(ns < 9.2e18)) return kNever;
    const auto whole = static_cast<std::int64_t>(ns);  // ns >= 0: truncation is floor.
    return Nanos{whole + (static_cast<double>(whole) < ns ? 1 : 0)};
  }

  // Returns how long after `t` the bucket whose state is `empty_at` holds `target` tokens, as
  // `tokens()` counts them: the formula's answer, nudged forwards until `tokens()` agrees, so
  // that a caller who waits that long is admitted whatever floating-point error the instants
  // carry (at 1000 days of uptime a double of nanoseconds resolves only 16 ns).
  Nanos wait_for_tokens(double empty_at, std::int64_t t, double target) const noexcept {
    Nanos wait =
        ceil_nanos(std::max(0.0, empty_at + target * ns_per_token_ - static_cast<double>(t)));
    for (std::int64_t step = 1; wait != kNever; step *= 2) {
      // The instant as a later call would see it: an integer, then converted.
      const auto then = static_cast<double>(internal::saturating_add(t, wait.count()));
      if (tokens(empty_at, then) + kTolerance >= target) break;
      wait = internal::saturating_add(wait, Nanos{step});
    }
    return wait;
  }

  Step decide(double empty_at, Instant now, std::uint64_t cost) const noexcept {
    const std::int64_t instant = internal::clamped_nanos(now);
    const auto t = static_cast<double>(instant);
    const double available = tokens(empty_at, t);
    const auto make = [&](Verdict verdict, double left, Nanos retry, double state) {
      return Decision(verdict, quota_.burst(), static_cast<std::int64_t>(left + kTolerance), 1,
                      retry, wait_for_tokens(state, instant, burst_));
    };
    if (cost > quota_.burst()) [[unlikely]] {
      return {make(Verdict::ExceedsBurst, available, kNever, empty_at), empty_at};
    }
    const auto need = static_cast<double>(cost);
    // A stale `now` may find the bucket in debt (its state ahead of `now`): even cost 0 waits.
    if (available + kTolerance < need || (cost == 0 && empty_at > t)) {
      return {make(Verdict::Denied, available, wait_for_tokens(empty_at, instant, need), empty_at),
              empty_at};
    }
    if (cost == 0) return {make(Verdict::Allowed, available, Nanos::zero(), empty_at), empty_at};
    const double left = std::max(0.0, available - need);
    // The bucket is next empty `left` tokens' time before `t`: from a full bucket,
    // t - (burst - cost) / rate, computed from constants and `t` alone; otherwise the old instant
    // plus the cost's time. Either way never earlier than it was. (Writing the full case without
    // `left` keeps the state out of the arithmetic, so one call's store feeds the next call's
    // load through a max alone.)
    const double next = available == burst_
                            ? std::max(empty_at, t - (burst_ - need) * ns_per_token_)
                            : empty_at + need * ns_per_token_;
    return {make(Verdict::Allowed, left, Nanos::zero(), next), next};
  }

  const Quota quota_;
  const double rate_per_ns_;
  const double ns_per_token_;  // 1 / rate_per_ns_: the hot path multiplies instead of dividing.
  const double burst_;
  [[no_unique_address]] const C clock_;
  // The instant (ns, as a double's bits) at which the bucket was last empty; -infinity: full.
  alignas(kCacheLineSize) std::atomic<std::uint64_t> state_{
      std::bit_cast<std::uint64_t>(-std::numeric_limits<double>::infinity())};
};

}  // namespace floodgate
