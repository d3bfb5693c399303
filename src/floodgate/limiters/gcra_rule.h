// The generic cell rate algorithm (GCRA) as pure functions: from a state, an instant, a cost and
// the quota to a decision and the next state. Where the state lives is the caller's business:
// `GcraLimiter` keeps it in one atomic; a keyed store or a Redis script can keep it elsewhere and
// apply the same rule.
//
// The state is one int64, the theoretical arrival time (TAT): the instant at which the limiter
// will be back to its full burst. A request of cost n at instant t is admitted iff
//     max(TAT, t) + n x interval - t <= burst x interval,
// and admitting it sets TAT to max(TAT, t) + n x interval. This decides exactly as a token bucket
// of `burst` tokens refilled one per `interval` would (tokens at t = burst - max(0, TAT - t) /
// interval), with the whole state in one word. Pure, allocation-free and thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate {

// The quota as the integers the rule works in.
struct GcraParams {
  std::int64_t interval;  // Nanoseconds one permit takes to refill, >= 1.
  std::int64_t window;    // burst x interval, <= internal::kMaxWindow.
  std::uint64_t burst;    // Permits admitted at one instant, >= 1.

  // Returns the parameters of `quota`. The quota's limits guarantee `window` fits.
  static GcraParams from(const Quota& quota) noexcept {
    const std::int64_t interval = quota.interval().count();
    return {interval, static_cast<std::int64_t>(quota.burst()) * interval, quota.burst()};
  }
};

// The state of a limiter that has admitted nothing: full at every instant a limiter accepts.
inline constexpr std::int64_t kGcraFullState = -internal::kTimeLimit;

// A decision and the state after it.
struct GcraStep {
  Decision decision;
  std::int64_t state;  // Equal to the input state unless the request was admitted with cost > 0.
};

namespace internal {

// Returns how far `state` runs ahead of the clamped instant `t`: zero when the limiter is full
// at `t`. The true difference lies in [0, 2^64), so it is computed unsigned.
constexpr std::uint64_t gcra_backlog(std::int64_t state, std::int64_t t) noexcept {
  return state > t ? static_cast<std::uint64_t>(state) - static_cast<std::uint64_t>(t) : 0;
}

}  // namespace internal

// Returns the decision for `cost` permits at `now` against `state`, and the state after it,
// for a cost known to lie in [1, burst] (`gcra_acquire` without its check of the cost, for
// callers that have checked it already). `now` is clamped as floodgate/core/time.h describes.
constexpr GcraStep gcra_admit(std::int64_t state, Instant now, std::uint64_t cost,
                              const GcraParams& params) noexcept {
  const std::int64_t t = internal::clamped_nanos(now);
  const std::uint64_t used = internal::gcra_backlog(state, t);
  const auto window = static_cast<std::uint64_t>(params.window);
  // cost <= burst, so the charge is at most the window (2^61) and `need` cannot wrap.
  const std::uint64_t charge = cost * static_cast<std::uint64_t>(params.interval);
  const std::uint64_t need = used + charge;
  if (need > window) {
    const std::int64_t headroom = used >= window ? 0 : static_cast<std::int64_t>(window - used);
    return {Decision(Verdict::Denied, params.burst, headroom, params.interval,
                     internal::saturating_nanos(need - window), internal::saturating_nanos(used)),
            state};
  }
  // Admitted. The new state is max(state, t) + charge = t + need, and need <= window keeps it
  // below INT64_MAX (floodgate/core/time.h).
  return {Decision(Verdict::Allowed, params.burst, static_cast<std::int64_t>(window - need),
                   params.interval, Nanos::zero(), Nanos{static_cast<std::int64_t>(need)}),
          t + static_cast<std::int64_t>(need)};
}

// Returns the decision for `cost` permits at `now` against `state`, and the state after it.
// `now` is clamped as floodgate/core/time.h describes. Cost 0 consumes nothing and is admitted
// unless the state runs more than the window ahead of `now` (only a stale `now` sees that).
// Any int64 `state` is accepted, even one this rule never produces (a corrupt store): the
// arithmetic is unsigned where a difference could exceed the int64 range, and sums are bounded
// as time.h explains, so nothing overflows.
constexpr GcraStep gcra_acquire(std::int64_t state, Instant now, std::uint64_t cost,
                                const GcraParams& params) noexcept {
  if (cost > params.burst) [[unlikely]] {
    const std::uint64_t used = internal::gcra_backlog(state, internal::clamped_nanos(now));
    const auto window = static_cast<std::uint64_t>(params.window);
    const std::int64_t headroom = used >= window ? 0 : static_cast<std::int64_t>(window - used);
    return {Decision(Verdict::ExceedsBurst, params.burst, headroom, params.interval, kNever,
                     internal::saturating_nanos(used)),
            state};
  }
  GcraStep step = gcra_admit(state, now, cost, params);
  if (cost == 0) step.state = state;  // Nothing consumed: the state stays as it was.
  return step;
}

// Returns the number of permits, at most `max_cost`, that `gcra_acquire` would admit at `now`
// against `state`: as many as are available, or zero.
constexpr std::uint64_t gcra_available(std::int64_t state, Instant now, std::uint64_t max_cost,
                                       const GcraParams& params) noexcept {
  const std::uint64_t used = internal::gcra_backlog(state, internal::clamped_nanos(now));
  const auto window = static_cast<std::uint64_t>(params.window);
  if (used >= window) return 0;
  const std::uint64_t available = (window - used) / static_cast<std::uint64_t>(params.interval);
  return available < max_cost ? available : max_cost;
}

// The furthest ahead of `now` a reservation may push the state: 2^62 ns (about 146 years) of
// promised capacity. With instants clamped to +-kTimeLimit, states stay below INT64_MAX.
inline constexpr std::uint64_t kGcraMaxBacklog = std::uint64_t{1} << 62;

// A reservation's answer and the state after it.
struct GcraReserveStep {
  // `Allowed`: granted, honoured at `at`. `Denied`: its wait would pass `max_delay` (or the
  // largest backlog); nothing consumed. `ExceedsBurst`: cost above the burst; nothing consumed.
  Verdict verdict;
  std::int64_t at;     // The instant (clamped nanoseconds) at which it is, or would be, honoured.
  std::int64_t state;  // Equal to the input state unless granted with cost > 0.
};

// Returns the reservation of `cost` permits at `now` against `state`: the capacity is taken now
// (the state moves as an admission would, possibly past the window, into debt) and the caller
// may proceed at `at`, the first instant at which `gcra_acquire` would have admitted it, had
// nothing else been taken. Reservations stack: each one's `at` is no earlier than the previous
// one's for non-decreasing instants, so they are honoured in the order they were made (FIFO).
// A reservation whose wait would exceed `max_delay` is refused and takes nothing.
constexpr GcraReserveStep gcra_reserve(std::int64_t state, Instant now, std::uint64_t cost,
                                       Nanos max_delay, const GcraParams& params) noexcept {
  const std::int64_t t = internal::clamped_nanos(now);
  if (cost > params.burst) [[unlikely]] {
    return {Verdict::ExceedsBurst, internal::kTimeLimit, state};
  }
  const std::uint64_t used = internal::gcra_backlog(state, t);
  const std::uint64_t charge = cost * static_cast<std::uint64_t>(params.interval);
  const auto window = static_cast<std::uint64_t>(params.window);
  // `used` may be near 2^64 for a stale `t`; cap it before adding so nothing wraps.
  const std::uint64_t need = used > kGcraMaxBacklog ? kGcraMaxBacklog + 1 : used + charge;
  const std::uint64_t delay = need > window ? need - window : 0;
  const std::int64_t at = internal::saturating_add(t, internal::saturating_nanos(delay).count());
  if (need > kGcraMaxBacklog || max_delay < Nanos::zero() ||
      delay > static_cast<std::uint64_t>(max_delay.count())) {
    return {Verdict::Denied, at, state};
  }
  // t <= 2^62 - 1 and need <= 2^62: the sum is below INT64_MAX.
  return {Verdict::Allowed, at, cost == 0 ? state : t + static_cast<std::int64_t>(need)};
}

// Returns the state after cancelling a reservation of `charge` (cost x interval) that moved the
// state from `before` to `after`, where the state is now `state` and the time `now`.
// - If the state is still `after` (nothing was taken since), it returns `before`: exactly the
//   state had the reservation never been made.
// - Otherwise later calls have stacked on top of it, and the refund is
//       min(charge, after - max(now, state - window)),   or nothing if that is negative:
//   the part of the reservation's capacity that lies beyond `now` and beyond every later
//   call's honour instant (each of which is at most max(now, state - window)). Giving back
//   more could let a new call in earlier than it would be had the reservation never been made
//   (later calls keeping their instants); this is the largest refund that is safe whatever
//   those later calls were, since the state does not record them. It assumes `now` is no
//   earlier than the instants of those later calls (true when everyone reads one clock).
constexpr std::int64_t gcra_refund(std::int64_t state, std::int64_t before, std::int64_t after,
                                   std::uint64_t charge, Instant now,
                                   const GcraParams& params) noexcept {
  if (state == after) return before;
  const std::int64_t t = internal::clamped_nanos(now);
  const std::int64_t later = std::max(t, state - params.window);
  if (after <= later) return state;
  const auto room = static_cast<std::uint64_t>(after) - static_cast<std::uint64_t>(later);
  return state - static_cast<std::int64_t>(std::min(charge, room));
}

// Returns the state under `to` that carries `state` (under `from`) across a change of quota at
// `now`, as `policy` says. Permits are converted rounding towards more used, so a change never
// hands out a fraction of a permit that was not there. The map is non-decreasing in `state`,
// so reservations keep their order when their own states are carried by it. A state at or
// before `now` that stays full is kept as it is (stale callers keep seeing what they saw).
//
// Under `KeepRemaining`, a change never admits more than the larger of the two quotas would,
// in any window of caller instants, provided `now` is no earlier than the instants of the calls
// decided before it (as for `gcra_refund`; `set_quota()` reading the callers' clock keeps that
// up to the race between two clock reads). A `now` older than calls already decided re-times
// their consumption from `now` on at the new rate, and can admit more.
constexpr std::int64_t gcra_change_quota(std::int64_t state, Instant now, const GcraParams& from,
                                         const GcraParams& to, OnQuotaChange policy) noexcept {
  __extension__ using Wide = __int128;
  const std::int64_t t = internal::clamped_nanos(now);
  const Wide used = static_cast<Wide>(std::min(internal::gcra_backlog(state, t), kGcraMaxBacklog));
  Wide carried = 0;  // The backlog under `to`, in nanoseconds.
  switch (policy) {
    case OnQuotaChange::KeepRemaining: {
      // remaining x to.interval, with remaining = (from.window - used) / from.interval, floored
      // (towards fewer remaining, more debt).
      const Wide left = static_cast<Wide>(from.window) - used;
      Wide scaled = left * to.interval;
      scaled =
          scaled >= 0 ? scaled / from.interval : -((-scaled + from.interval - 1) / from.interval);
      carried = static_cast<Wide>(to.window) - std::min<Wide>(scaled, to.window);
      break;
    }
    case OnQuotaChange::KeepProportion:
      carried = (used * to.window + from.window - 1) / from.window;
      break;
    case OnQuotaChange::StartFull:
      carried = used > from.window
                    ? ((used - from.window) * to.interval + from.interval - 1) / from.interval
                    : 0;
      break;
  }
  carried = std::min<Wide>(carried, static_cast<Wide>(kGcraMaxBacklog));
  if (carried <= 0) return used == 0 ? state : t;
  return t + static_cast<std::int64_t>(carried);
}

// GCRA under the uniform names a store of many states uses (`KeyedLimiter`; see
// `TokenBucketRule` for the other rule with the same shape).
struct GcraRule {
  using State = std::int64_t;
  using Params = GcraParams;
  static constexpr State kFullState = kGcraFullState;

  static Params params(const Quota& quota) noexcept { return GcraParams::from(quota); }
  static GcraStep acquire(State state, Instant now, std::uint64_t cost,
                          const Params& params) noexcept {
    return gcra_acquire(state, now, cost, params);
  }
  // Returns the first clamped instant from which `state` decides every call as `kFullState`
  // does: the arrival time itself.
  static std::int64_t full_from(State state, const Params& /*params*/) noexcept { return state; }
  // Reports whether `state` decides every call at `t` or later as `kFullState` does.
  static bool is_full(State state, std::int64_t t, const Params& /*params*/) noexcept {
    return state <= t;
  }
  static State change_quota(State state, Instant now, const Params& from, const Params& to,
                            OnQuotaChange policy) noexcept {
    return gcra_change_quota(state, now, from, to, policy);
  }
  // Returns how long an empty bucket takes to fill.
  static Nanos window(const Params& params) noexcept { return Nanos{params.window}; }
};

// Returns the rule for `quota` as a function object, (state, now, cost) -> (decision, next
// state): the form a test kit's sequential model takes (floodgate/testkit/limiter_checks.h).
inline auto make_gcra_rule(const Quota& quota) {
  return [params = GcraParams::from(quota)](std::int64_t state, Instant now, std::uint64_t cost) {
    const GcraStep step = gcra_acquire(state, now, cost, params);
    return std::pair<Decision, std::int64_t>{step.decision, step.state};
  };
}

}  // namespace floodgate
