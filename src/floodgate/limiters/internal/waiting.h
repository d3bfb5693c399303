// The blocking `acquire` of the bucket limiters: reserve, then sleep until the reservation is
// ready, a deadline or a stop request. Not part of the public API.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <stop_token>

#include "floodgate/core/clock.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate::internal {

// Returns a uniformly random duration in [0, jitter], from a per-thread generator.
inline Nanos random_jitter(Nanos jitter) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> pick(0, jitter.count());
  return Nanos{pick(rng)};
}

// Reserves `cost` on `limiter` at the clock's instant, then sleeps until the permits are ready
// (plus a random share of `jitter`, never past the deadline); see `BucketLimiter::acquire`.
template <class Limiter, SleepingClock C>
WaitResult wait_for(Limiter& limiter, const C& clock, std::uint64_t cost, Instant deadline,
                    const std::stop_token& stop, Nanos jitter) {
  const Instant now = clock.now();
  if (stop.stop_requested()) return {WaitStatus::Cancelled, now};
  // Negative once the deadline has passed: then even permits free now are refused.
  const Nanos budget{
      saturating_sub(deadline.time_since_epoch().count(), now.time_since_epoch().count())};
  Reservation r = limiter.reserve_at(now, cost, budget);
  if (r.verdict() == Verdict::ExceedsBurst) return {WaitStatus::ExceedsBurst, now};
  if (!r.allowed()) return {WaitStatus::DeadlineTooSoon, r.ready_at()};
  const Instant ready = r.ready_at();
  const Nanos spread = jitter > Nanos::zero() ? random_jitter(jitter) : Nanos::zero();
  const Instant jittered{saturating_add(ready.time_since_epoch(), spread)};
  if (clock.sleep_until(std::min(jittered, std::max(deadline, ready)), stop)) {
    return {WaitStatus::Allowed, ready};
  }
  const Instant at = clock.now();
  (void)r.cancel_at(at);
  return {WaitStatus::Cancelled, at};
}

}  // namespace floodgate::internal
