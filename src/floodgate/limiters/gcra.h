// `GcraLimiter`: the default floodgate limiter. Exact, lock-free, one 64-bit word of state.
// Thread-safe (see floodgate/limiters/bucket_limiter.h for what each member guarantees).
#pragma once

#include "floodgate/core/clock.h"
#include "floodgate/core/quota.h"
#include "floodgate/limiters/bucket_limiter.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {

// A rate limiter that admits `quota.burst()` permits at once and then one permit per
// `quota.interval()`: a token bucket of `burst` permits, initially full, refilled at the quota's
// rate, kept as GCRA's single arrival time. Its decisions are exactly those of an ideal token
// bucket with that interval (the period divided by the count, rounded up to whole nanoseconds,
// so it never admits more than the quota), which are the decisions golang.org/x/time/rate's
// `AllowN(t, n)` makes, without its floating-point drift.
//
//   floodgate::GcraLimiter limiter{floodgate::Quota::per_second(100)};
//   if (floodgate::Decision d = limiter.try_acquire(); !d.allowed()) {
//     reply_429(d.retry_after());
//   }
//
// Its members, reservations, waits and quota changes are `BucketLimiter`'s.
template <Clock C = SteadyClock, Threads T = Threads::Many>
class GcraLimiter : public BucketLimiter<GcraRule, C, T> {
 public:
  using BucketLimiter<GcraRule, C, T>::BucketLimiter;
};

// `GcraLimiter limiter{quota}` runs on the steady clock; `GcraLimiter limiter{quota, clock}`
// on `clock`'s type.
GcraLimiter(Quota)->GcraLimiter<>;
template <Clock C>
GcraLimiter(Quota, C) -> GcraLimiter<C>;

static_assert(RateLimiter<GcraLimiter<>>);
static_assert(RateLimiter<GcraLimiter<SteadyClock, Threads::One>>);

// GCRA as `testkit::check_arrival_time_witness` takes it, to check a history of calls to a
// `GcraLimiter` (or code built on one) against the rule in the order the limiter serialized them:
// the state of a limiter that has admitted nothing, and the rule for `quota` as a function
// (state, now, cost) -> (decision, next state).
inline constexpr std::int64_t kGcraInitialState = internal::Gcra::kFull;
inline auto gcra_model(const Quota& quota) { return internal::Gcra::model(quota); }

}  // namespace floodgate
