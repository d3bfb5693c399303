// `TokenBucketLimiter`: golang.org/x/time/rate's model, a real-valued rate and a burst, in one
// lock-free 64-bit word. Thread-safe (see floodgate/limiters/bucket_limiter.h for what each
// member guarantees).
#pragma once

#include "floodgate/core/clock.h"
#include "floodgate/core/quota.h"
#include "floodgate/limiters/bucket_limiter.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {

// A token bucket of `quota.burst()` tokens, initially full, refilled continuously at
// `quota.count()` per `quota.period()`: 1 per 3 s is exact up to floating point. A call of cost
// n at instant t is admitted iff at least n tokens are in the bucket at t.
//
//   floodgate::TokenBucketLimiter limiter{floodgate::Quota::per(std::chrono::seconds(3), 1)};
//   limiter.tokens_at(now);  // 1.0, then 0.0 after an admission, then refilling at 1/3 per s.
//
// - Decides as x/time/rate's `Limiter` with `Limit` = count / period and the same burst, on any
//   sequence of calls with non-decreasing instants: `try_acquire_at` as `AllowN`, `reserve_at`
//   as `ReserveN` (with `max_delay`, as `WaitN`'s reservation), `acquire` as `WaitN`,
//   `Reservation::cancel_at` as `CancelAt`, `tokens_at` as `TokensAt` (negative while in
//   debt). x_time_rate_differential_test.cc compares them with a transcription of x/time/rate.
// - Where it differs, on purpose: a stale `now` never admits more (golang/go#71360); a cancel
//   never gives back more tokens than the reservation took (x/time/rate can); waits are rounded
//   up to whole nanoseconds (x/time/rate truncates), so a caller who waits `retry_after` is
//   admitted; a cancel after `set_quota` gives nothing back.
// - Reservations and cancels serialize on a mutex (a cancel needs the latest reservation's
//   instant beside the state word); deciding and peeking stay lock-free. A cancel that races
//   with another thread's admission gives back at most GCRA's safe refund, which never exceeds
//   x/time/rate's amount for serialized calls.
// - The state is a double of nanoseconds: its resolution is below 1 ns up to about 52 days from
//   the clock's epoch and about 8 ns after 2 years, which moves a decision only for calls within
//   that margin of a token boundary.
//
// Choose `GcraLimiter` unless you port from or compare with x/time/rate. Its members,
// reservations, waits and quota changes are `BucketLimiter`'s.
template <Clock C = SteadyClock, Threads T = Threads::Many>
class TokenBucketLimiter : public BucketLimiter<TokenBucketRule, C, T> {
 public:
  using BucketLimiter<TokenBucketRule, C, T>::BucketLimiter;
};

// `TokenBucketLimiter limiter{quota}` runs on the steady clock; `TokenBucketLimiter limiter{quota,
// clock}` on `clock`'s type.
TokenBucketLimiter(Quota)->TokenBucketLimiter<>;
template <Clock C>
TokenBucketLimiter(Quota, C) -> TokenBucketLimiter<C>;

static_assert(RateLimiter<TokenBucketLimiter<>>);
static_assert(RateLimiter<TokenBucketLimiter<SteadyClock, Threads::One>>);

}  // namespace floodgate
