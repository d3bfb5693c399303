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
// - `try_acquire_at` decides as x/time/rate's `AllowN(t, n)` with `Limit` = count / period and
//   the same burst, on any trace with non-decreasing instants, except where a token count lands
//   within 1e-9 of a whole number (counted as that number, where x/time/rate may deny).
// - Unlike x/time/rate, a stale `now` never admits more (golang/go#71360).
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

TokenBucketLimiter(Quota)->TokenBucketLimiter<>;
template <Clock C>
TokenBucketLimiter(Quota, C) -> TokenBucketLimiter<C>;

static_assert(RateLimiter<TokenBucketLimiter<>>);
static_assert(RateLimiter<TokenBucketLimiter<SteadyClock, Threads::One>>);

}  // namespace floodgate
