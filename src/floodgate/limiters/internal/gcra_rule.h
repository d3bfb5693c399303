// The generic cell rate algorithm (GCRA) as pure functions over one int64 state: the rule of
// `GcraLimiter` and of `KeyedLimiter<..., GcraRule>`. Not part of the public API; docs/design.md
// derives the rule and its bounds.
//
// The state is the theoretical arrival time (TAT): the instant at which the bucket is full again.
// A request of cost n at instant t is admitted iff max(TAT, t) + n x interval - t <= window
// (window = burst x interval), and admitting it sets TAT to that sum. Every function accepts any
// int64 state and any instant (clamped to +-kTimeLimit), and no value has a special meaning.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/cancelled.h"

namespace floodgate::internal {

struct Gcra {
  using State = std::int64_t;
  using Charge = std::uint64_t;  // Nanoseconds of refill.

  // The quota as the integers the rule works in.
  struct Params {
    std::int64_t interval;  // Nanoseconds one permit takes to refill, >= 1.
    std::int64_t window;    // burst x interval, <= kMaxWindow.
    std::uint64_t burst;    // Permits admitted at one instant, >= 1.
  };

  // A decision and the state after it.
  struct Step {
    Decision decision;
    State state;  // The input state unless admitted with cost > 0.
  };

  // A reservation's answer and the state after it.
  struct ReserveStep {
    Verdict verdict;  // Allowed (granted), Denied (past `max_delay`) or ExceedsBurst.
    std::int64_t at;  // The clamped instant at which it is, or would be, honoured.
    State state;      // The input state unless granted with cost > 0.
  };

  // A refund and the state after it.
  struct RefundStep {
    State state;
    Nanos given;  // The refill time given back, at most the charge.
  };

  using Cancelled = internal::Cancelled<State, Charge>;
  using CancelStep = internal::CancelStep<State>;

  // GCRA's refund needs no record of the latest call.
  static constexpr bool kTracksLastEvent = false;

  // The state of a limiter that has admitted nothing: full at every instant.
  static constexpr State kFull = -kTimeLimit;

  // `is_full` and `full_from` do not read the parameters.
  static constexpr bool kSelfTimed = true;

  // The furthest ahead of `now` a reservation may push the state (2^62 ns, about 146 years), so
  // that every state stays at most INT64_MAX.
  static constexpr std::uint64_t kMaxBacklog = std::uint64_t{1} << 62;

  static Params params(const Quota& quota) noexcept {
    const std::int64_t interval = quota.interval().count();
    return {interval, static_cast<std::int64_t>(quota.burst()) * interval, quota.burst()};
  }

  // Returns the most permits one call may take.
  static constexpr std::uint64_t burst(const Params& p) noexcept { return p.burst; }

  static constexpr std::uint64_t word(State state) noexcept {
    return static_cast<std::uint64_t>(state);
  }
  static constexpr State state(std::uint64_t word) noexcept { return static_cast<State>(word); }

  // Returns how far `state` runs ahead of the clamped instant `t`, zero when the bucket is full
  // at `t`. The difference lies in [0, 2^64), so it is computed unsigned.
  static constexpr std::uint64_t backlog(State state, std::int64_t t) noexcept {
    return state > t ? static_cast<std::uint64_t>(state) - static_cast<std::uint64_t>(t) : 0;
  }

  // Returns the decision for `cost` in [1, burst] at the clamped instant `t`, and sets `next` to
  // the state after it.
  [[gnu::always_inline]] static constexpr Decision admit(State state, std::int64_t t,
                                                         std::uint64_t cost, const Params& p,
                                                         State& next) noexcept {
    const std::uint64_t used = backlog(state, t);
    const auto window = static_cast<std::uint64_t>(p.window);
    // cost <= burst keeps the charge at most the window (2^61), so `need` cannot wrap.
    const std::uint64_t need = used + cost * static_cast<std::uint64_t>(p.interval);
    // One construction of each field, whichever the verdict, so that the compiler keeps the
    // decision in registers.
    const bool allowed = need <= window;
    const std::uint64_t after = allowed ? need : used;
    const std::int64_t headroom = after >= window ? 0 : static_cast<std::int64_t>(window - after);
    const Nanos retry_after = allowed ? Nanos::zero() : wait_nanos(need - window);
    // Admitted: max(state, t) + charge = t + need <= t + window, below INT64_MAX.
    next = allowed ? t + static_cast<std::int64_t>(need) : state;
    return Decision(allowed ? Verdict::Allowed : Verdict::Denied, p.burst, headroom, p.interval,
                    retry_after, saturating_nanos(after));
  }

  // Returns the decision for any `cost` at `now` and the state after it. Cost 0 consumes
  // nothing and is admitted unless the state runs more than the window ahead of `now` (only a
  // stale `now` sees that); a cost above the burst is `ExceedsBurst`.
  static constexpr Step acquire(State state, Instant now, std::uint64_t cost,
                                const Params& p) noexcept {
    if (cost > p.burst) [[unlikely]] {
      const std::uint64_t used = backlog(state, clamped_nanos(now));
      const auto window = static_cast<std::uint64_t>(p.window);
      const std::int64_t headroom = used >= window ? 0 : static_cast<std::int64_t>(window - used);
      return {Decision(Verdict::ExceedsBurst, p.burst, headroom, p.interval, kNever,
                       saturating_nanos(used)),
              state};
    }
    State next = state;
    const Decision decision = admit(state, clamped_nanos(now), cost, p, next);
    return {decision, cost == 0 ? state : next};
  }

  // Returns how many permits, at most `max_cost`, `acquire` would admit at `now`.
  static constexpr std::uint64_t available(State state, Instant now, std::uint64_t max_cost,
                                           const Params& p) noexcept {
    const std::uint64_t used = backlog(state, clamped_nanos(now));
    const auto window = static_cast<std::uint64_t>(p.window);
    if (used >= window) return 0;
    return std::min(max_cost, (window - used) / static_cast<std::uint64_t>(p.interval));
  }

  // Returns the permits available at `now` as a real number, negative while reservations have
  // put the limiter in debt (x/time/rate's `TokensAt`).
  static constexpr double tokens(State state, Instant now, const Params& p) noexcept {
    const std::uint64_t used = backlog(state, clamped_nanos(now));
    return (static_cast<double>(p.window) - static_cast<double>(used)) /
           static_cast<double>(p.interval);
  }

  // Returns the capacity a reservation of `cost` takes, in state units (cost x interval).
  static constexpr Charge charge(std::uint64_t cost, const Params& p) noexcept {
    return cost * static_cast<std::uint64_t>(p.interval);
  }

  // Returns the reservation of `cost` permits at `now`: the capacity is taken now (the state
  // moves as an admission would, possibly past the window, into debt) and the caller may
  // proceed at `at`, the first instant at which `acquire` would have admitted it had nothing
  // else been taken. For non-decreasing instants each reservation's `at` is no earlier than the
  // previous one's (FIFO). One whose wait would exceed `max_delay` takes nothing.
  static constexpr ReserveStep reserve(State state, Instant now, std::uint64_t cost,
                                       Nanos max_delay, const Params& p) noexcept {
    const std::int64_t t = clamped_nanos(now);
    if (cost > p.burst) [[unlikely]]
      return {Verdict::ExceedsBurst, kTimeLimit, state};
    const std::uint64_t used = backlog(state, t);
    const auto window = static_cast<std::uint64_t>(p.window);
    // `used` may be near 2^64 for a stale `t`; cap it before adding so that nothing wraps.
    const std::uint64_t need = used > kMaxBacklog ? kMaxBacklog + 1 : used + charge(cost, p);
    const std::uint64_t delay = need > window ? need - window : 0;
    const std::int64_t at = saturating_add(t, saturating_nanos(delay).count());
    if (need > kMaxBacklog || max_delay < Nanos::zero() ||
        delay > static_cast<std::uint64_t>(max_delay.count())) {
      return {Verdict::Denied, at, state};
    }
    // t <= 2^62 - 1 and need <= 2^62: the sum is at most INT64_MAX.
    return {Verdict::Allowed, at, cost == 0 ? state : t + static_cast<std::int64_t>(need)};
  }

  // Returns the state after cancelling, at `now`, a reservation of `charge` that moved the state
  // from `before` to `after`, where the state is now `state`. Exact when nothing was taken since
  // (the state is still `after`: it returns `before`); otherwise it gives back
  // min(charge, after - max(now, state - window)), the part of the reservation that lies beyond
  // `now` and beyond every later call's honour instant, or nothing if that is negative.
  static constexpr RefundStep refund(State state, State before, State after, std::uint64_t charge,
                                     Instant now, const Params& p) noexcept {
    State next = state;
    if (state == after) {
      next = before;
    } else {
      const std::int64_t t = clamped_nanos(now);
      const std::int64_t later = std::max(t, state - p.window);
      if (after > later) {
        const auto room = static_cast<std::uint64_t>(after) - static_cast<std::uint64_t>(later);
        next = state - static_cast<std::int64_t>(std::min(charge, room));
      }
    }
    if (next >= state) return {state, Nanos::zero()};
    // Restoring the state before an idle limiter's reservation moves it by more than the charge;
    // what was given back is the charge.
    const std::uint64_t moved =
        static_cast<std::uint64_t>(state) - static_cast<std::uint64_t>(next);
    return {next, saturating_nanos(std::min(moved, charge))};
  }

  // Returns the state after cancelling the reservation `r` at `now`: nothing comes back once `now`
  // is past `r.ready_at` (the permits are presumed used, as x/time/rate's `CancelAt` presumes);
  // before that, `refund`'s.
  static constexpr CancelStep cancel(State state, std::int64_t last_event, const Cancelled& r,
                                     Instant now, const Params& p) noexcept {
    if (r.cost == 0 || r.ready_at < clamped_nanos(now)) return {state, last_event, Nanos::zero()};
    const RefundStep step = refund(state, r.before, r.after, r.charge, now, p);
    return {step.state, last_event, step.given};
  }

  // Returns the state under `to` that carries `state` (under `from`) across a change of quota at
  // `now`, as `policy` says. Permits are converted rounding towards more used, so a change never
  // hands out a fraction of a permit that was not there. A state that stays full at `now` is
  // kept as it is (stale callers keep seeing what they saw).
  static constexpr State change_quota(State state, Instant now, const Params& from,
                                      const Params& to, OnQuotaChange policy) noexcept {
    __extension__ using Wide = __int128;
    const std::int64_t t = clamped_nanos(now);
    const Wide used = static_cast<Wide>(std::min(backlog(state, t), kMaxBacklog));
    Wide carried = 0;  // The backlog under `to`, in nanoseconds.
    switch (policy) {
      case OnQuotaChange::KeepRemaining: {
        // The permits remaining, (from.window - used) / from.interval, floored (negative in
        // debt), in units of to.interval.
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
    carried = std::min<Wide>(carried, static_cast<Wide>(kMaxBacklog));
    if (carried <= 0) return used == 0 ? state : t;
    return t + static_cast<std::int64_t>(carried);
  }

  // Reports whether `state` decides every call at `t` or later as `kFull` does.
  static constexpr bool is_full(State state, std::int64_t t, const Params& /*p*/) noexcept {
    return state <= t;
  }

  // Returns the first clamped instant from which `is_full` holds: the arrival time itself.
  static constexpr std::int64_t full_from(State state, const Params& /*p*/) noexcept {
    return state;
  }

  // Returns how long an empty bucket takes to fill.
  static constexpr Nanos window(const Params& p) noexcept { return Nanos{p.window}; }

  // Returns the rule for `quota` as a function (state, now, cost) -> (decision, next state): the
  // sequential model that the testkit's checks take.
  static auto model(const Quota& quota) {
    return [p = params(quota)](State state, Instant now, std::uint64_t cost) {
      const Step step = acquire(state, now, cost, p);
      return std::pair<Decision, State>{step.decision, step.state};
    };
  }
};

}  // namespace floodgate::internal
