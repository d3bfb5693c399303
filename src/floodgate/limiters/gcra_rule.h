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

// Returns the decision for `cost` permits at `now` against `state`, and the state after it.
// `now` is clamped as floodgate/core/time.h describes. Cost 0 consumes nothing and is admitted
// unless the state runs more than the window ahead of `now` (only a stale `now` sees that).
// Any int64 `state` is accepted, even one this rule never produces (a corrupt store): the
// arithmetic is unsigned where a difference could exceed the int64 range, and sums are bounded
// as time.h explains, so nothing overflows.
constexpr GcraStep gcra_acquire(std::int64_t state, Instant now, std::uint64_t cost,
                                const GcraParams& params) noexcept {
  const std::int64_t t = internal::clamped_nanos(now);
  const std::uint64_t used = internal::gcra_backlog(state, t);
  const auto window = static_cast<std::uint64_t>(params.window);
  const std::int64_t headroom_before =
      used >= window ? 0 : static_cast<std::int64_t>(window - used);

  if (cost > params.burst) [[unlikely]] {
    return {Decision(Verdict::ExceedsBurst, params.burst, headroom_before, params.interval, kNever,
                     internal::saturating_nanos(used)),
            state};
  }
  // cost <= burst, so the charge is at most the window (2^61) and `need` cannot wrap.
  const std::uint64_t charge = cost * static_cast<std::uint64_t>(params.interval);
  const std::uint64_t need = used + charge;
  if (need > window) {
    return {Decision(Verdict::Denied, params.burst, headroom_before, params.interval,
                     internal::saturating_nanos(need - window), internal::saturating_nanos(used)),
            state};
  }
  // Admitted. The new state is max(state, t) + charge = t + need, and need <= window keeps it
  // below INT64_MAX (floodgate/core/time.h).
  return {Decision(Verdict::Allowed, params.burst, static_cast<std::int64_t>(window - need),
                   params.interval, Nanos::zero(), Nanos{static_cast<std::int64_t>(need)}),
          cost == 0 ? state : t + static_cast<std::int64_t>(need)};
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

// Returns the rule for `quota` as a function object, (state, now, cost) -> (decision, next
// state): the form a test kit's sequential model takes (floodgate/testkit/limiter_checks.h).
inline auto make_gcra_rule(const Quota& quota) {
  return [params = GcraParams::from(quota)](std::int64_t state, Instant now, std::uint64_t cost) {
    const GcraStep step = gcra_acquire(state, now, cost, params);
    return std::pair<Decision, std::int64_t>{step.decision, step.state};
  };
}

}  // namespace floodgate
