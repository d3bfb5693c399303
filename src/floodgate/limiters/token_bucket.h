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
      if (internal::is_single_threaded()) {
        state_.store(next, std::memory_order_relaxed);
        return step.decision;
      }
      if (state_.compare_exchange_weak(bits, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return step.decision;
      }
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

  double tokens(double empty_at, double t) const noexcept {
    // empty_at starts at -infinity: a full bucket at any instant.
    const double elapsed = t - empty_at;
    return elapsed <= 0 ? 0.0 : std::min(burst_, elapsed * rate_per_ns_);
  }

  // Returns a non-negative duration in nanoseconds, rounded up (waits are never reported
  // short) and saturated at `kNever`.
  static Nanos ceil_nanos(double ns) noexcept {
    if (!(ns < 9.2e18)) return kNever;
    const auto whole = static_cast<std::int64_t>(ns);  // ns >= 0: truncation is floor.
    return Nanos{whole + (static_cast<double>(whole) < ns ? 1 : 0)};
  }

  Step decide(double empty_at, Instant now, std::uint64_t cost) const noexcept {
    const double t = static_cast<double>(internal::clamped_nanos(now));
    const double available = tokens(empty_at, t);
    // A stale `now` may see the bucket in debt: the state is ahead of `now`.
    const double debt_ns = empty_at > t ? empty_at - t : 0.0;
    const auto make = [&](Verdict verdict, double left, Nanos retry) {
      return Decision(verdict, quota_.burst(), static_cast<std::int64_t>(left), 1, retry,
                      ceil_nanos(debt_ns + (burst_ - left) * ns_per_token_));
    };
    if (cost > quota_.burst()) [[unlikely]] {
      return {make(Verdict::ExceedsBurst, available, kNever), empty_at};
    }
    const auto need = static_cast<double>(cost);
    if (available < need || (cost == 0 && debt_ns > 0)) {
      return {make(Verdict::Denied, available,
                   ceil_nanos(debt_ns + (need - available) * ns_per_token_)),
              empty_at};
    }
    const double left = available - need;
    // The bucket is next empty `left` tokens' time before `t`: from a full bucket,
    // t - (burst - cost) / rate, computed from constants and `t` alone; otherwise the old instant
    // plus the cost's time. Either way never earlier than it was. (Writing the full case without
    // `left` keeps the state out of the arithmetic, so one call's store feeds the next call's
    // load through a max alone.)
    const double next = available == burst_
                            ? std::max(empty_at, t - (burst_ - need) * ns_per_token_)
                            : empty_at + need * ns_per_token_;
    return {make(Verdict::Allowed, left, Nanos::zero()), cost == 0 ? empty_at : next};
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
