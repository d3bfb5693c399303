// `LeakyBucketPacer`: uber-go/ratelimit's model. Instead of denying, it tells each caller when to
// go, spacing calls one interval apart, with a few intervals of slack after idle. Lock-free, one
// 64-bit word; thread-safe; no method allocates or throws (`take` sleeps).
//
// Its `take_at` is already a reservation (the turn it returns is the caller's to keep) and
// `take` already waits; there is no cancel, since a turn given back could only be reused by a
// caller that arrives before it, which the pacer's one instant of state cannot tell, and no
// `set_quota`. A server that needs those uses `GcraLimiter` with `with_burst(1)`, whose
// `reserve_at` spaces calls one interval apart the same way and offers both.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {

// Spaces calls `quota.interval()` apart. After idle, up to `quota.burst()` calls may go at once
// (the slack: burst - 1 banked intervals, uber-go/ratelimit's `WithSlack(burst - 1)`; the first
// call has none banked); `Quota::per_second(100).with_burst(1)` paces strictly, as
// `WithoutSlack` does. The turns are those uber-go/ratelimit's atomic limiter gives (a test
// replays it).
//
//   floodgate::LeakyBucketPacer pacer{floodgate::Quota::per_second(100).with_burst(1)};
//   for (auto& job : jobs) {
//     pacer.take();  // Sleeps until this call's turn.
//     send(job);
//   }
//
// Semantics:
// - `take_at(now)` reserves the next turn and returns its instant: `now` when the caller may go
//   at once, or a later instant to wait for. Turns are never closer than the interval, except
//   for the slack after idle: over any span of turns [t1, t2], at most burst + (t2 - t1) /
//   interval calls go.
// - Stale time: a `now` older than the state never earns an earlier turn; the state (the next
//   free turn) only moves forwards.
// - A caller that reserves a turn and then does not use it still spends it: reservations cannot
//   be cancelled here (see `GcraLimiter` for try-and-deny instead).
// - Instants are clamped as in floodgate/core/time.h; turns beyond the range saturate.
//
// It is a `Pacer`, not a `RateLimiter`: it never denies. `take_at` is one compare-and-swap;
// `take` adds a sleep.
template <Clock C = SteadyClock>
class LeakyBucketPacer {
 public:
  // Creates a pacer whose next turn is free.
  explicit LeakyBucketPacer(Quota quota, C clock = C{}) noexcept
      : quota_(quota),
        interval_(quota.interval().count()),
        slack_(static_cast<std::int64_t>(quota.burst() - 1) * quota.interval().count()),
        clock_(std::move(clock)) {}

  LeakyBucketPacer(const LeakyBucketPacer&) = delete;
  LeakyBucketPacer& operator=(const LeakyBucketPacer&) = delete;

  // Reserves the next turn as of `now` and returns when the caller may go (>= `now`).
  Instant take_at(Instant now) noexcept {
    const std::int64_t t = internal::clamped_nanos(now);
    std::int64_t next = next_.load(std::memory_order_acquire);
    while (true) {
      // The turn: the next free one, or as early as the slack allows after idle. The first call
      // goes now, with no slack banked yet (as uber-go/ratelimit's first Take).
      const std::int64_t floor = next == kUnused ? t : t - slack_;
      const std::int64_t turn = next > floor ? next : floor;
      const std::int64_t after = internal::saturating_add(turn, interval_);
      if (next_.compare_exchange_weak(next, after, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return Instant{Nanos{turn > t ? turn : t}};
      }
    }
  }

  // Reserves the next turn now and sleeps until it. Returns the turn's instant.
  Instant take() requires SleepingClock<C> {
    const Instant turn = take_at(clock_.now());
    clock_.sleep_until(turn);
    return turn;
  }

  // Returns the next free turn: a caller arriving earlier than it waits until it (less the slack).
  // Before the first call, `Instant::min()`.
  Instant next_turn() const noexcept {
    return Instant{Nanos{next_.load(std::memory_order_acquire)}};
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  const Quota quota_;
  const std::int64_t interval_;
  const std::int64_t slack_;  // (burst - 1) x interval.
  [[no_unique_address]] const C clock_;
  // No turn taken yet.
  static constexpr std::int64_t kUnused = std::numeric_limits<std::int64_t>::min();
  // The instant of the next free turn, or kUnused.
  alignas(internal::kCacheLineSize) std::atomic<std::int64_t> next_{kUnused};
};

static_assert(Pacer<LeakyBucketPacer<>>);

}  // namespace floodgate
