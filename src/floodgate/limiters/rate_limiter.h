// What every rate limiter has in common: the `RateLimiter` concept, the `Pacer` concept for the
// limiter that schedules instead of denying, and `Threads`, the choice between a limiter that
// any number of threads may share and one for a single thread.
//
//   template <floodgate::RateLimiter L>
//   bool admit(L& limiter, floodgate::Instant now) {
//     return limiter.try_acquire_at(now, 1).allowed();
//   }
//
//   floodgate::GcraLimiter<floodgate::SteadyClock, floodgate::Threads::One> per_loop{quota};
#pragma once

#include <concepts>
#include <cstdint>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate {

// A limiter that answers each request with a `Decision`. Every form that reads the limiter's
// clock has an `_at` form that takes the instant instead, so tests and replays are
// deterministic. `GcraLimiter`, `TokenBucketLimiter`, `FixedWindowLimiter`,
// `SlidingWindowLogLimiter` and `SlidingWindowCounterLimiter` are rate limiters.
template <typename L>
concept RateLimiter = requires(L& limiter, const L& reader, Instant now, std::uint64_t cost) {
  { limiter.try_acquire_at(now, cost) } -> std::same_as<Decision>;  // decide at `now`, consume
  { limiter.try_acquire(cost) } -> std::same_as<Decision>;          // the same at the clock's now
  { reader.peek_at(now, cost) } -> std::same_as<Decision>;          // decide, consume nothing
  { reader.peek(cost) } -> std::same_as<Decision>;                  // the same at the clock's now
  { reader.quota() } -> std::convertible_to<Quota>;                 // the quota in force
  reader.clock();                                                   // the clock it reads
};

// A limiter that never denies but tells each caller when to go (`LeakyBucketPacer`). A pacer is
// not a `RateLimiter`: its answer is an instant, not a decision.
template <typename P>
concept Pacer = requires(P& pacer, const P& reader, Instant now) {
  { pacer.take_at(now) } -> std::same_as<Instant>;   // reserve the next turn as of `now`
  { reader.next_turn() } -> std::same_as<Instant>;   // the next free turn
  { reader.quota() } -> std::convertible_to<Quota>;  // the quota it paces to
  reader.clock();                                    // the clock it reads
};

// Who may call a limiter at once, chosen when the type is named.
enum class Threads : std::uint8_t {
  // Any number of threads at once: updates are compare-and-swap loops. The default.
  Many,
  // One thread at a time (an event loop, a per-thread shard): plain loads and stores, no
  // atomic read-modify-write. Calls from two threads at once are a data race.
  One,
};

}  // namespace floodgate
