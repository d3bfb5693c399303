// The token bucket of `TokenBucketLimiter` as pure functions: from a state, an instant, a cost
// and the quota to a decision and the next state, plus reservations, refunds and quota changes.
// Pure, allocation-free and thread-safe.
//
// The state is one double, `empty_at`: the instant (in nanoseconds) at which the bucket was, or
// will be, empty. The tokens at instant t are min(burst, (t - empty_at) x rate), negative while
// reservations have put the bucket in debt; -infinity is a full bucket at every instant. This
// is GCRA's state shifted by the window (empty_at = TAT - burst / rate) with a real-valued rate,
// which is how `token_bucket_refund` borrows `gcra_refund`'s rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate {

// The quota as the doubles the rule works in.
struct TokenBucketParams {
  double rate_per_ns;     // Tokens refilled per nanosecond: count / period.
  double ns_per_token;    // 1 / rate_per_ns: the hot path multiplies instead of dividing.
  double burst;           // The bucket's size.
  double window;          // burst x ns_per_token: how long an empty bucket takes to fill.
  std::uint64_t permits;  // The burst as an integer, for costs and decisions.

  // Returns the parameters of `quota`.
  static TokenBucketParams from(const Quota& quota) noexcept {
    const auto count = static_cast<double>(quota.count());
    const auto period = static_cast<double>(quota.period().count());
    const auto burst = static_cast<double>(quota.burst());
    return {count / period, period / count, burst, burst * (period / count), quota.burst()};
  }
};

// The state of a bucket that has admitted nothing: full at every instant.
inline constexpr double kTokenBucketFullState = -std::numeric_limits<double>::infinity();

// A decision and the state after it.
struct TokenBucketStep {
  Decision decision;
  double state;  // Equal to the input state unless the request was admitted with cost > 0.
};

namespace internal {

// Token counts this close to a whole number count as it: floating-point error in a refill must
// not turn 3 tokens into 2.9999999997 and deny a cost of 3 (x/time/rate does, golang/go#46579).
inline constexpr double kTokenTolerance = 1e-9;

// Returns the tokens available at `t`: 0 while in debt, at most the burst.
inline double bucket_tokens(double empty_at, double t, const TokenBucketParams& p) noexcept {
  const double elapsed = t - empty_at;  // +infinity for a full bucket.
  if (elapsed <= 0) return 0.0;
  const double refilled = elapsed * p.rate_per_ns;
  return refilled >= p.burst - kTokenTolerance ? p.burst : refilled;
}

// Returns `ns` in whole nanoseconds, rounded up (waits are never reported short) and saturated
// at `kNever`; `ns` must be above INT64_MIN.
inline Nanos ceil_nanos(double ns) noexcept {
  if (!(ns < 9.2e18)) return kNever;
  const auto whole = static_cast<std::int64_t>(ns);  // ns >= 0: truncation is floor.
  return Nanos{whole + (static_cast<double>(whole) < ns ? 1 : 0)};
}

// Returns how long after `t` the bucket holds `target` tokens, as `bucket_tokens` counts them:
// the formula's answer, nudged forwards until `bucket_tokens` agrees, so that a caller who waits
// that long is admitted whatever floating-point error the instants carry (at 1000 days of
// uptime a double of nanoseconds resolves only 16 ns).
inline Nanos bucket_wait(double empty_at, std::int64_t t, double target,
                         const TokenBucketParams& p) noexcept {
  Nanos wait =
      ceil_nanos(std::max(0.0, empty_at + target * p.ns_per_token - static_cast<double>(t)));
  for (std::int64_t step = 1; wait != kNever; step *= 2) {
    // The instant as a later call would see it: an integer, then converted.
    const auto then = static_cast<double>(saturating_add(t, wait.count()));
    if (bucket_tokens(empty_at, then, p) + kTokenTolerance >= target) break;
    wait = saturating_add(wait, Nanos{step});
  }
  return wait;
}

// Returns the decision for a bucket holding `available` tokens at `instant`.
inline Decision bucket_decision(Verdict verdict, double available, Nanos retry, double state,
                                std::int64_t instant, const TokenBucketParams& p) noexcept {
  return Decision(verdict, p.permits, static_cast<std::int64_t>(available + kTokenTolerance), 1,
                  retry, bucket_wait(state, instant, p.burst, p));
}

}  // namespace internal

// Returns the decision for `cost` tokens at `now`, and the state after it, for a cost known to
// lie in [1, burst] (`token_bucket_acquire` without its check of the cost).
inline TokenBucketStep token_bucket_admit(double empty_at, Instant now, std::uint64_t cost,
                                          const TokenBucketParams& p) noexcept {
  const std::int64_t instant = internal::clamped_nanos(now);
  const auto t = static_cast<double>(instant);
  const double available = internal::bucket_tokens(empty_at, t, p);
  const auto need = static_cast<double>(cost);
  if (available + internal::kTokenTolerance < need) {
    return {internal::bucket_decision(Verdict::Denied, available,
                                      internal::bucket_wait(empty_at, instant, need, p), empty_at,
                                      instant, p),
            empty_at};
  }
  const double left = std::max(0.0, available - need);
  // The bucket is next empty `left` tokens' time before `t`: from a full bucket,
  // t - (burst - cost) / rate, computed from constants and `t` alone; otherwise the old instant
  // plus the cost's time. Either way never earlier than it was. (Writing the full case without
  // `left` keeps the state out of the arithmetic, so one call's store feeds the next call's
  // load through a max alone.)
  const double next = available == p.burst
                          ? std::max(empty_at, t - (p.burst - need) * p.ns_per_token)
                          : empty_at + need * p.ns_per_token;
  return {internal::bucket_decision(Verdict::Allowed, left, Nanos::zero(), next, instant, p), next};
}

// Returns the decision for `cost` tokens at `now` against `empty_at`, and the state after it.
// Cost 0 is admitted without consuming anything unless the bucket is in debt at `now` (only a
// stale `now` or a reservation sees that); a cost above the burst is `ExceedsBurst`. Instants
// are clamped as in floodgate/core/time.h.
inline TokenBucketStep token_bucket_acquire(double empty_at, Instant now, std::uint64_t cost,
                                            const TokenBucketParams& p) noexcept {
  if (cost - 1 < p.permits) [[likely]]
    return token_bucket_admit(empty_at, now, cost, p);
  const std::int64_t instant = internal::clamped_nanos(now);
  const auto t = static_cast<double>(instant);
  const double available = internal::bucket_tokens(empty_at, t, p);
  if (cost != 0) {
    return {
        internal::bucket_decision(Verdict::ExceedsBurst, available, kNever, empty_at, instant, p),
        empty_at};
  }
  // A stale `now` may find the bucket in debt (its state ahead of `now`): even cost 0 waits.
  const bool in_debt = empty_at > t;
  return {internal::bucket_decision(
              in_debt ? Verdict::Denied : Verdict::Allowed, available,
              in_debt ? internal::bucket_wait(empty_at, instant, 0.0, p) : Nanos::zero(), empty_at,
              instant, p),
          empty_at};
}

// The furthest ahead of `now` a reservation may push the bucket's debt: 2^62 ns (about 146
// years), as for GCRA.
inline constexpr double kTokenBucketMaxDebt = 4.611686018427387904e18;

// A reservation's answer and the state after it.
struct TokenBucketReserveStep {
  // `Allowed`: granted, honoured at `at`. `Denied`: its wait would pass `max_delay` (or the
  // largest debt); nothing consumed. `ExceedsBurst`: cost above the burst; nothing consumed.
  Verdict verdict;
  std::int64_t at;  // The instant (clamped nanoseconds) at which it is, or would be, honoured.
  double state;     // Equal to the input state unless granted with cost > 0.
};

// Returns the reservation of `cost` tokens at `now`: the tokens are taken now (into debt if the
// bucket holds fewer) and the caller may proceed at `at`, the first instant at which
// `token_bucket_acquire` would have admitted it had nothing else been taken. Reservations stack
// in the order they are made (FIFO). One whose wait would exceed `max_delay` is refused and
// takes nothing.
inline TokenBucketReserveStep token_bucket_reserve(double empty_at, Instant now, std::uint64_t cost,
                                                   Nanos max_delay,
                                                   const TokenBucketParams& p) noexcept {
  const std::int64_t instant = internal::clamped_nanos(now);
  if (cost > p.permits) [[unlikely]] {
    return {Verdict::ExceedsBurst, internal::kTimeLimit, empty_at};
  }
  const auto t = static_cast<double>(instant);
  const auto need = static_cast<double>(cost);
  const Nanos wait = internal::bucket_wait(empty_at, instant, need, p);
  const std::int64_t at = internal::saturating_add(instant, wait.count());
  const double available = internal::bucket_tokens(empty_at, t, p);
  const double next = cost == 0 ? empty_at
                      : available == p.burst
                          ? std::max(empty_at, t - (p.burst - need) * p.ns_per_token)
                          : empty_at + need * p.ns_per_token;
  if (wait == kNever || max_delay < Nanos::zero() || wait > max_delay ||
      next - t > kTokenBucketMaxDebt) {
    return {Verdict::Denied, at, empty_at};
  }
  return {Verdict::Allowed, at, next};
}

// Returns the state after cancelling a reservation of `charge` nanoseconds of refill (cost /
// rate) that moved the state from `before` to `after`, where the state is now `state` and the
// time `now`: `gcra_refund`'s rule (see there) on the equivalent arrival times. If the state is
// still `after`, it returns `before` exactly; otherwise it gives back
// min(charge, after + window - max(now, state)), or nothing if that is negative: the part of
// the reservation that lies beyond now and beyond every later call's honour instant.
inline double token_bucket_refund(double state, double before, double after, double charge,
                                  Instant now, const TokenBucketParams& p) noexcept {
  if (state == after) return before;
  const auto t = static_cast<double>(internal::clamped_nanos(now));
  const double room = after + p.window - std::max(t, state);
  if (!(room > 0)) return state;
  return state - std::min(charge, room);
}

// Returns the state under `to` that carries `empty_at` (under `from`) across a change of quota
// at `now`, as `policy` says, in tokens: `KeepRemaining` keeps them (capped at the new burst; a
// debt stays as tokens owed), `KeepProportion` scales them by the ratio of the bursts,
// `StartFull` refills to the new burst less any debt. The map is non-decreasing in `empty_at`,
// so reservations keep their order. A bucket that stays full keeps its state (stale callers
// keep seeing what they saw).
inline double token_bucket_change_quota(double empty_at, Instant now, const TokenBucketParams& from,
                                        const TokenBucketParams& to,
                                        OnQuotaChange policy) noexcept {
  const auto t = static_cast<double>(internal::clamped_nanos(now));
  // The tokens at `t`, negative in debt.
  const double tokens = std::min(from.burst, (t - empty_at) * from.rate_per_ns);
  double carried = 0;
  switch (policy) {
    case OnQuotaChange::KeepRemaining:
      carried = std::min(tokens, to.burst);
      break;
    case OnQuotaChange::KeepProportion:
      carried = tokens / from.burst * to.burst;
      break;
    case OnQuotaChange::StartFull:
      carried = to.burst + std::min(0.0, tokens);
      break;
  }
  const double full = t - to.window;
  if (carried >= to.burst - internal::kTokenTolerance) return std::min(empty_at, full);
  return std::max(full, t - carried * to.ns_per_token);
}

// The token bucket under the uniform names a store of many states uses (`KeyedLimiter`; see
// `GcraRule`).
struct TokenBucketRule {
  using State = double;
  using Params = TokenBucketParams;
  static constexpr State kFullState = kTokenBucketFullState;

  static Params params(const Quota& quota) noexcept { return TokenBucketParams::from(quota); }
  static TokenBucketStep acquire(State state, Instant now, std::uint64_t cost,
                                 const Params& params) noexcept {
    return token_bucket_acquire(state, now, cost, params);
  }
  // Reports whether `state` decides every call at the clamped instant `t` or later as
  // `kFullState` does, decision and next state alike. Each condition is one that
  // `token_bucket_acquire` relies on, evaluated in the same floating-point expressions, so a
  // rounding error cannot make the two disagree; each is monotone in `t`.
  static bool is_full(State state, std::int64_t t, const Params& p) noexcept {
    const auto x = static_cast<double>(t);
    return state + p.window <= x     // No wait for any cost up to the burst.
           && state <= x - p.window  // An admission's next state ignores `state`.
           && internal::bucket_tokens(state, x, p) == p.burst;  // The bucket reads full.
  }
  // Returns the first clamped instant at which `is_full` holds (INT64_MAX if none): found
  // around `state + window` by doubling steps, then bisected.
  static std::int64_t full_from(State state, const Params& p) noexcept {
    constexpr std::int64_t kFirst = -internal::kTimeLimit;
    constexpr std::int64_t kLast = internal::kTimeLimit;
    if (is_full(state, kFirst, p)) return kFirst;
    if (!is_full(state, kLast, p)) return INT64_MAX;
    const double guess = std::clamp(std::ceil(state + p.window), static_cast<double>(kFirst),
                                    static_cast<double>(kLast));
    // Invariant once found: is_full(hi) and !is_full(lo), with lo < hi.
    std::int64_t hi = static_cast<std::int64_t>(guess);
    std::int64_t lo = hi;
    std::int64_t step = 1;
    if (is_full(state, hi, p)) {
      do {
        hi = lo;
        lo = std::max(kFirst, lo - step);
        step *= 2;
      } while (is_full(state, lo, p));
    } else {
      do {
        lo = hi;
        hi = std::min(kLast, hi + step);
        step *= 2;
      } while (!is_full(state, hi, p));
    }
    while (hi - lo > 1) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      (is_full(state, mid, p) ? hi : lo) = mid;
    }
    return hi;
  }
  static State change_quota(State state, Instant now, const Params& from, const Params& to,
                            OnQuotaChange policy) noexcept {
    return token_bucket_change_quota(state, now, from, to, policy);
  }
  // Returns how long an empty bucket takes to fill, rounded up.
  static Nanos window(const Params& params) noexcept { return internal::ceil_nanos(params.window); }
};

}  // namespace floodgate
