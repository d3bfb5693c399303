// The token bucket of `TokenBucketLimiter` (x/time/rate's model: a real-valued rate) as pure
// functions over one double state. Not part of the public API; docs/design.md has the details.
//
// The state is `empty_at`: the instant, in nanoseconds, at which the bucket was or will be
// empty. The tokens at instant t are min(burst, (t - empty_at) x rate), negative while
// reservations have put the bucket in debt; -infinity is a bucket full at every instant. This is
// GCRA's state shifted by the window (empty_at = TAT - burst / rate) with a real-valued rate.
// Cancelling a reservation also needs x/time/rate's `lastEvent`, the ready instant of the latest
// granted call, which the limiter keeps beside the state (`kTracksLastEvent`).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/cancelled.h"

namespace floodgate::internal {

struct TokenBucket {
  using State = double;
  using Charge = double;  // Nanoseconds of refill.

  // The quota as the doubles the rule works in.
  struct Params {
    double rate_per_ns;     // Tokens refilled per nanosecond: count / period.
    double ns_per_token;    // 1 / rate_per_ns: the hot path multiplies instead of dividing.
    double burst;           // The bucket's size.
    std::uint64_t permits;  // The burst as an integer, for costs and decisions.
  };

  using Cancelled = internal::Cancelled<State, Charge>;
  using CancelStep = internal::CancelStep<State>;

  // The limiter records the ready instant of each granted call for `cancel`.
  static constexpr bool kTracksLastEvent = true;

  struct Step {
    Decision decision;
    State state;  // The input state unless admitted with cost > 0.
  };

  struct ReserveStep {
    Verdict verdict;  // Allowed (granted), Denied (past `max_delay`) or ExceedsBurst.
    std::int64_t at;  // The clamped instant at which it is, or would be, honoured.
    State state;      // The input state unless granted with cost > 0.
  };

  struct RefundStep {
    State state;
    Nanos given;  // The refill time given back, at most the charge, rounded.
  };

  // A bucket that has admitted nothing: full at every instant.
  static constexpr State kFull = -std::numeric_limits<double>::infinity();

  // The furthest ahead of `now` a reservation may push the bucket's debt: 2^62 ns, as for GCRA.
  static constexpr double kMaxDebt = 4.611686018427387904e18;

  static Params params(const Quota& quota) noexcept {
    const auto count = static_cast<double>(quota.count());
    const auto period = static_cast<double>(quota.period().count());
    const auto burst = static_cast<double>(quota.burst());
    return {count / period, period / count, burst, quota.burst()};
  }

  // Returns how long an empty bucket takes to fill: burst x ns_per_token.
  static double window_ns(const Params& p) noexcept { return p.burst * p.ns_per_token; }

  // Returns the most tokens one call may take.
  static constexpr std::uint64_t burst(const Params& p) noexcept { return p.permits; }

  static std::uint64_t word(State state) noexcept { return std::bit_cast<std::uint64_t>(state); }
  static State state(std::uint64_t word) noexcept { return std::bit_cast<double>(word); }

  // Returns the tokens available at `t`: 0 while in debt, at most the burst.
  [[gnu::pure]] static double bucket_tokens(double empty_at, double t, const Params& p) noexcept {
    const double elapsed = t - empty_at;  // +infinity for a full bucket.
    if (elapsed <= 0) return 0.0;
    const double refilled = elapsed * p.rate_per_ns;
    return refilled >= p.burst ? p.burst : refilled;
  }

  // Returns the tokens at `t` as x/time/rate counts them: negative while in debt.
  [[gnu::pure]] static double signed_tokens(double empty_at, double t, const Params& p) noexcept {
    const double elapsed = t - empty_at;  // +infinity for a full bucket.
    if (!(elapsed < std::numeric_limits<double>::infinity())) return p.burst;
    return std::min(p.burst, elapsed * p.rate_per_ns);
  }

  // Returns `ns` in whole nanoseconds, rounded up (waits are never reported short) and saturated
  // at `kLongestWait`; `ns` must be above INT64_MIN.
  static Nanos ceil_nanos(double ns) noexcept {
    if (!(ns < 9.2e18)) return kLongestWait;
    const auto whole = static_cast<std::int64_t>(ns);  // ns >= 0: truncation is floor.
    return Nanos{whole + (static_cast<double>(whole) < ns ? 1 : 0)};
  }

  // Returns how long after `t` the bucket holds `target` tokens, as `bucket_tokens` counts them:
  // the formula's answer, nudged forwards until `bucket_tokens` agrees, so that a caller who waits
  // that long is admitted whatever floating-point error the instants carry (at 1000 days of
  // uptime a double of nanoseconds resolves only 16 ns).
  [[gnu::pure]] static Nanos bucket_wait(double empty_at, std::int64_t t, double target,
                                         const Params& p) noexcept {
    Nanos wait =
        ceil_nanos(std::max(0.0, empty_at + target * p.ns_per_token - static_cast<double>(t)));
    // The loop runs to `kNever` at most (saturated) and is capped after it: this shape lets the
    // compiler drop the whole computation when the caller reads neither wait (bench/hot_path's
    // "deny" row measures it).
    for (std::int64_t step = 1; wait != kNever; step *= 2) {
      // The instant as a later call would see it: an integer, then converted.
      const auto then = static_cast<double>(saturating_add(t, wait.count()));
      if (bucket_tokens(empty_at, then, p) >= target) break;
      wait = saturating_add(wait, Nanos{step});
    }
    return std::min(wait, kLongestWait);
  }

  // Returns the decision for a bucket holding `available` tokens at `instant`.
  static Decision bucket_decision(Verdict verdict, double available, Nanos retry, double state,
                                  std::int64_t instant, const Params& p) noexcept {
    return Decision(verdict, p.permits, static_cast<std::int64_t>(available), 1, retry,
                    bucket_wait(state, instant, p.burst, p));
  }

  // Returns the decision for `cost` in [1, burst] at the clamped instant `instant`, and sets
  // `next` to the state after it.
  [[gnu::always_inline]] static Decision admit(State empty_at, std::int64_t instant,
                                               std::uint64_t cost, const Params& p,
                                               State& next) noexcept {
    const auto t = static_cast<double>(instant);
    const double available = bucket_tokens(empty_at, t, p);
    const auto need = static_cast<double>(cost);
    const bool allowed = available >= need;
    // The bucket is next empty `left` tokens' time before `t`: from a full bucket,
    // t - (burst - cost) / rate, computed from `t` alone; otherwise the old instant plus the
    // cost's time. Either way never earlier than it was.
    next = !allowed               ? empty_at
           : available == p.burst ? std::max(empty_at, t - (p.burst - need) * p.ns_per_token)
                                  : empty_at + need * p.ns_per_token;
    const double left = allowed ? std::max(0.0, available - need) : available;
    return bucket_decision(allowed ? Verdict::Allowed : Verdict::Denied, left,
                           allowed ? Nanos::zero() : bucket_wait(empty_at, instant, need, p), next,
                           instant, p);
  }

  // Returns the decision for any `cost` at `now` and the state after it. Cost 0 is admitted
  // without consuming anything unless the bucket is in debt at `now` (only a stale `now` or a
  // reservation sees that); a cost above the burst is `ExceedsBurst`.
  static Step acquire(State empty_at, Instant now, std::uint64_t cost, const Params& p) noexcept {
    if (cost - 1 < p.permits) [[likely]] {
      State next = empty_at;
      const Decision decision = admit(empty_at, clamped_nanos(now), cost, p, next);
      return {decision, next};
    }
    const std::int64_t instant = clamped_nanos(now);
    const auto t = static_cast<double>(instant);
    const double available = bucket_tokens(empty_at, t, p);
    if (cost != 0) {
      return {bucket_decision(Verdict::ExceedsBurst, available, kNever, empty_at, instant, p),
              empty_at};
    }
    const bool in_debt = empty_at > t;
    return {bucket_decision(in_debt ? Verdict::Denied : Verdict::Allowed, available,
                            in_debt ? bucket_wait(empty_at, instant, 0.0, p) : Nanos::zero(),
                            empty_at, instant, p),
            empty_at};
  }

  // Returns how many tokens, at most `max_cost`, `acquire` would admit at `now`.
  static std::uint64_t available(State empty_at, Instant now, std::uint64_t max_cost,
                                 const Params& p) noexcept {
    const double tokens = bucket_tokens(empty_at, static_cast<double>(clamped_nanos(now)), p);
    const auto whole = static_cast<std::uint64_t>(tokens);  // As `admit` counts them.
    return std::min(max_cost, std::min(whole, p.permits));
  }

  // Returns the tokens in the bucket at `now`, negative while in debt (x/time/rate's `TokensAt`).
  static double tokens(State empty_at, Instant now, const Params& p) noexcept {
    return signed_tokens(empty_at, static_cast<double>(clamped_nanos(now)), p);
  }

  // Returns the refill time a reservation of `cost` takes.
  static Charge charge(std::uint64_t cost, const Params& p) noexcept {
    return static_cast<double>(cost) * p.ns_per_token;
  }

  // Returns the reservation of `cost` tokens at `now`: taken now (into debt if the bucket holds
  // fewer), usable from `at`, the first instant at which `acquire` would have admitted it had
  // nothing else been taken. FIFO for non-decreasing instants. One whose wait would exceed
  // `max_delay` takes nothing.
  static ReserveStep reserve(State empty_at, Instant now, std::uint64_t cost, Nanos max_delay,
                             const Params& p) noexcept {
    const std::int64_t instant = clamped_nanos(now);
    if (cost > p.permits) [[unlikely]]
      return {Verdict::ExceedsBurst, kTimeLimit, empty_at};
    const auto t = static_cast<double>(instant);
    const auto need = static_cast<double>(cost);
    const Nanos wait = bucket_wait(empty_at, instant, need, p);
    const std::int64_t at = saturating_add(instant, wait.count());
    const double available = bucket_tokens(empty_at, t, p);
    const double next = cost == 0 ? empty_at
                        : available == p.burst
                            ? std::max(empty_at, t - (p.burst - need) * p.ns_per_token)
                            : empty_at + need * p.ns_per_token;
    if (wait >= kLongestWait || max_delay < Nanos::zero() || wait > max_delay ||
        next - t > kMaxDebt) {
      return {Verdict::Denied, at, empty_at};
    }
    return {Verdict::Allowed, at, next};
  }

  // Returns the state after cancelling, at `now`, the reservation `r`, when the latest granted
  // call was ready at `last_event`: x/time/rate's `CancelAt`. Nothing comes back if `now` is past
  // `r.ready_at` (the permits are presumed used) or for cost 0; otherwise the bucket gets back
  // r's tokens less those reserved after it (the tokens the time from r's ready instant to
  // `last_event` refills), capped at the burst, and if r was the latest call, `last_event` moves
  // back to the ready instant of the call before it (when that is not before `now`).
  //
  // The result is also held to the refund that is safe whatever calls came after `r` (the part
  // of its charge beyond `now` and beyond every later call's ready instant), which x/time/rate's
  // rule never exceeds when the calls are serialized; it bounds a cancel that races with other
  // threads' calls, whose `last_event` it may read before they write it.
  static CancelStep cancel(State empty_at, std::int64_t last_event, const Cancelled& r, Instant now,
                           const Params& p) noexcept {
    const std::int64_t instant = clamped_nanos(now);
    const CancelStep nothing{empty_at, last_event, Nanos::zero()};
    if (r.cost == 0 || r.ready_at < instant) return nothing;
    const auto t = static_cast<double>(instant);
    // Never negative when calls are serialized: every later call is ready no earlier than r.
    // Granted calls ready at their own instant are not recorded while the latest recorded
    // instant is not after theirs (the limiter's hot path skips the store); this clamp makes
    // them count as x/time/rate's record of them would.
    const double reserved_after =
        static_cast<double>(std::max<std::int64_t>(0, saturating_sub(last_event, r.ready_at))) *
        p.rate_per_ns;
    const double restore = static_cast<double>(r.cost) - reserved_after;
    if (!(restore > 0)) return nothing;
    double next = empty_at;
    if (empty_at == r.after && reserved_after == 0) {
      // Nothing since r (not even a cancelled reservation that x/time/rate still counts):
      // restoring its `before` decides every instant from `now` on as x/time/rate's refill
      // would, and stale instants as if r had never been made.
      next = r.before;
    } else {
      const double tokens = std::min(p.burst, signed_tokens(empty_at, t, p) + restore);
      next = tokens >= p.burst ? std::min(empty_at, t - window_ns(p)) : t - tokens * p.ns_per_token;
      // Held to the safe refund (GCRA's, on the equivalent arrival times).
      const double room = r.after + window_ns(p) - std::max(t, empty_at);
      next = std::max(next, room > 0 ? empty_at - std::min(r.charge, room) : empty_at);
    }
    std::int64_t event = last_event;
    if (r.ready_at == last_event) {
      // x/time/rate truncates the cost's duration towards zero.
      const auto span = static_cast<std::int64_t>(static_cast<double>(r.cost) * p.ns_per_token);
      const std::int64_t previous = saturating_sub(r.ready_at, span);
      if (previous >= instant) event = previous;
    }
    if (!(next < empty_at)) return {empty_at, event, Nanos::zero()};
    return {next, event, Nanos{std::llround(std::min(empty_at - next, r.charge))}};
  }

  // Returns the state under `to` that carries `empty_at` (under `from`) across a change of quota
  // at `now`, as `policy` says, in tokens: `KeepRemaining` keeps them (capped at the new burst;
  // a debt stays as tokens owed), `KeepProportion` scales them by the ratio of the bursts,
  // `StartFull` refills to the new burst less any debt. A bucket that stays full keeps its state.
  static State change_quota(State empty_at, Instant now, const Params& from, const Params& to,
                            OnQuotaChange policy) noexcept {
    const auto t = static_cast<double>(clamped_nanos(now));
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
    const double full = t - window_ns(to);
    if (carried >= to.burst) return std::min(empty_at, full);
    return std::max(full, t - carried * to.ns_per_token);
  }

  // Reports whether `state` decides every call at the clamped instant `t` or later as `kFull`
  // does, decision and next state alike. Each condition is one that `acquire` relies on, in the
  // same floating-point expressions, so rounding cannot make the two disagree; each is monotone
  // in `t`.
  static bool is_full(State state, std::int64_t t, const Params& p) noexcept {
    const auto x = static_cast<double>(t);
    const double window = window_ns(p);
    return state + window <= x                        // No wait for any cost up to the burst.
           && state <= x - window                     // An admission's next state ignores `state`.
           && bucket_tokens(state, x, p) == p.burst;  // The bucket reads full.
  }

  // Returns the first clamped instant at which `is_full` holds (INT64_MAX if none): found around
  // `state + window` by doubling steps, then bisected.
  static std::int64_t full_from(State state, const Params& p) noexcept {
    constexpr std::int64_t kFirst = -kTimeLimit;
    constexpr std::int64_t kLast = kTimeLimit;
    if (is_full(state, kFirst, p)) return kFirst;
    if (!is_full(state, kLast, p)) return INT64_MAX;
    const double guess = std::clamp(std::ceil(state + window_ns(p)), static_cast<double>(kFirst),
                                    static_cast<double>(kLast));
    // Invariant once found: is_full(hi) and !is_full(lo), with lo < hi.
    auto hi = static_cast<std::int64_t>(guess);
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

  // Returns how long an empty bucket takes to fill, rounded up.
  static Nanos window(const Params& p) noexcept { return ceil_nanos(window_ns(p)); }
};

}  // namespace floodgate::internal
