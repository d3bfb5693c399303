// `GcraLimiter`: the default floodgate limiter. Lock-free, exact, one 64-bit word of state.
//
// Thread-safe. Every method may be called from any number of threads at once; decisions are
// linearizable (each takes effect atomically at one compare-and-swap, or at one load for a
// denial or a peek). `try_acquire*`, `peek*` and `reserve*` never allocate, lock or throw;
// `Reservation::cancel_at` is a compare-and-swap loop; `acquire` blocks on the clock. While the
// process has never started a second thread, an admission is a plain load and store instead of a
// compare-and-swap (see `GcraLimiter`), so a limiter must not be shared with a signal handler that
// may interrupt a call on it, nor placed in memory shared between processes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <stop_token>
#include <thread>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/gcra_rule.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate {

// A rate limiter that admits `quota.burst()` permits at once and then one permit per
// `quota.interval()`: a token bucket of `burst` tokens, initially full, refilled at the quota's
// rate, kept as GCRA's single theoretical arrival time (floodgate/limiters/gcra_rule.h).
//
//   floodgate::GcraLimiter limiter{floodgate::Quota::per_second(100)};
//   if (floodgate::Decision d = limiter.try_acquire(); !d.allowed()) {
//     reply_429(d.retry_after());
//   }
//
// Semantics:
// - Exactness. Decisions equal those of an ideal token bucket with the same burst and an
//   interval of `quota.interval()` (the period divided by the count, rounded up to whole
//   nanoseconds; see floodgate/core/quota.h for the worst-case error, which only ever admits
//   less). These are the decisions golang.org/x/time/rate's `AllowN(t, n)` makes for that rate and
//   burst, without its floating-point drift.
// - Time. Each method has an `_at(Instant now, ...)` form that uses `now` and nothing else; the
//   form without `_at` reads the limiter's clock. Instants are clamped to about +-146 years
//   around the clock's epoch (floodgate/core/time.h).
// - Stale and out-of-order time. Concurrent callers that read the clock before calling may arrive
//   with a `now` older than one the limiter has already seen. A stale `now` is never a reason to
//   admit more: the state only moves forwards, and a request at an older instant finds the
//   bucket no fuller than at a newer one. For every set of admitted requests whose instants lie
//   in [t1, t2], in any interleaving, their total cost is at most burst + (t2 - t1) / interval.
//   (Proof: each admission raises the state by its cost x interval, the first one in [t1, t2] to
//   at least t1 + its charge, and the last leaves it at most t2 + burst x interval.) This is the
//   over-admission that golang/go#71360 reports for x/time/rate, ruled out by construction.
// - Costs. Cost 0 consumes nothing (admitted unless `now` is stale by more than a full window).
//   A cost above the burst is `ExceedsBurst`, never admitted. Any cost up to 2^64-1 is safe.
// - Far futures. A `now` far ahead consumes at that instant: callers at earlier instants see the
//   capacity as spent until the clock catches up. The limiter trusts the caller's time.
//
// Waiting and scheduling (see each method): `reserve_at` takes permits now for use at a later
// instant (FIFO), `Reservation::cancel_at` gives them back (exactly, for the most recent one;
// see `gcra_refund`), and `acquire` blocks until admitted, a deadline or a stop request.
//
// Hot-path cost: an admission is one load and one compare-and-swap; a denial and a peek are one
// load. The state sits alone on a cache line. A compare-and-swap costs 10 to 15 ns on the VMs we
// measured, several times the rest of the decision, so until the process starts its second
// thread an admission stores its new state with a plain store instead, as glibc's mutex and
// libstdc++'s `shared_ptr` skip their atomic instructions then (floodgate/core/concurrency.h).
// No other thread can exist to race with it; the one caveat is a signal handler that interrupts a
// call on the same limiter, or a limiter in memory shared between processes, which this
// limiter does not support.
template <Clock C = SteadyClock>
class GcraLimiter {
 public:
  // Creates a limiter with a full burst that reads time from `clock`.
  explicit GcraLimiter(Quota quota, C clock = C{}) noexcept
      : quota_(quota), params_(GcraParams::from(quota)), clock_(std::move(clock)) {}

  GcraLimiter(const GcraLimiter&) = delete;
  GcraLimiter& operator=(const GcraLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if they are available.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if they are available. Returns `Allowed` (consumed), `Denied`
  // (not yet; see `retry_after()`) or `ExceedsBurst` (cost > burst; never).
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    std::int64_t state = state_.load(std::memory_order_acquire);
    while (true) {
      const GcraStep step = gcra_acquire(state, now, cost, params_);
      if (step.state == state) return step.decision;  // A denial, or nothing to consume.
      if (internal::commit_word(state_, state, step.state)) return step.decision;
    }
  }

  // Reports what `try_acquire(cost)` would decide at the clock's current instant, without
  // consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything. Like that
  // decision, an allowed peek's `remaining()` counts what would be left after `cost`;
  // `peek_at(now, 0).remaining()` is the number of permits available at `now`.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    return gcra_acquire(state_.load(std::memory_order_acquire), now, cost, params_).decision;
  }

  // Admits as many permits as are available at the clock's current instant, up to `max_cost`.
  Grant try_acquire_up_to(std::uint64_t max_cost) noexcept {
    return try_acquire_up_to_at(clock_.now(), max_cost);
  }

  // Admits as many permits as are available at `now`, up to `max_cost`, and says how many.
  // When none are available the decision is `Denied`, with `retry_after()` the wait for one.
  Grant try_acquire_up_to_at(Instant now, std::uint64_t max_cost) noexcept {
    std::int64_t state = state_.load(std::memory_order_acquire);
    while (true) {
      const std::uint64_t granted = gcra_available(state, now, max_cost, params_);
      if (granted == 0) {
        // Answer for one permit, or for none if none was asked for.
        return {0, gcra_acquire(state, now, max_cost == 0 ? 0 : 1, params_).decision};
      }
      const GcraStep step = gcra_acquire(state, now, granted, params_);
      if (internal::commit_word(state_, state, step.state)) return {granted, step.decision};
    }
  }

  // Reserves `cost` permits at the clock's current instant; see `reserve_at`.
  Reservation reserve(std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    return reserve_at(clock_.now(), cost, max_delay);
  }

  // Takes `cost` permits at `now` for use from the returned reservation's `ready_at()`: now if
  // they are available, else the instant at which they would be (`gcra_reserve`). Reservations
  // are honoured in the order they are made. A reservation whose wait would exceed `max_delay`
  // is refused (`Denied`) and takes nothing; a cost above the burst is `ExceedsBurst`. Unlike
  // `try_acquire_at`, a granted reservation may leave the limiter in debt: callers after it
  // wait until the debt is repaid. Lock-free. `Reservation::cancel_at` refunds as
  // `gcra_refund` defines: exactly for the most recent reservation.
  Reservation reserve_at(Instant now, std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    std::int64_t state = state_.load(std::memory_order_acquire);
    while (true) {
      const GcraReserveStep step = gcra_reserve(state, now, cost, max_delay, params_);
      const internal::ReservationAccess::Fields f{
          .verdict = step.verdict,
          .cancelled = false,
          .ready_at = Instant{Nanos{step.at}},
          .cost = cost,
          .charge = cost * static_cast<std::uint64_t>(params_.interval),
          .before = static_cast<std::uint64_t>(state),
          .after = static_cast<std::uint64_t>(step.state),
      };
      if (step.verdict != Verdict::Allowed || step.state == state ||
          internal::commit_word(state_, state, step.state)) {
        return internal::ReservationAccess::make(f, this, &GcraLimiter::cancel_reservation);
      }
    }
  }

  // Blocks until `cost` permits are taken, and returns `Admitted`; or returns at once, taking
  // nothing, with `DeadlineTooSoon` if they would not be ready by `deadline` (x/time/rate's
  // rule: no caller sleeps only to fail) or `ExceedsBurst` if the cost is above the burst; or
  // returns `Cancelled` when `stop` is requested while waiting, after cancelling the
  // reservation (`Reservation::cancel_at`).
  //
  // Waiters are served in the order they reserved. `jitter` spreads their wake-ups: each wakes at
  // a uniformly random instant in [ready, ready + jitter], capped at the deadline, never before
  // its permits are ready. Requires a clock that can sleep (`SleepingClock`; in tests
  // `ManualClock`, which never sleeps for real).
  WaitResult acquire(std::uint64_t cost, Instant deadline, std::stop_token stop = {},
                     Nanos jitter = Nanos::zero()) requires SleepingClock<C> {
    const Instant now = clock_.now();
    if (stop.stop_requested()) return {WaitStatus::Cancelled, now};
    const Nanos budget = deadline <= now
                             ? Nanos::zero()
                             : Nanos{internal::saturating_sub(deadline.time_since_epoch().count(),
                                                              now.time_since_epoch().count())};
    Reservation r = reserve_at(now, cost, budget);
    if (r.verdict() == Verdict::ExceedsBurst) return {WaitStatus::ExceedsBurst, now};
    if (!r.ok()) return {WaitStatus::DeadlineTooSoon, r.ready_at()};
    const Instant ready = r.ready_at();
    const Nanos spread = jitter > Nanos::zero() ? random_jitter(jitter) : Nanos::zero();
    const Instant jittered{internal::saturating_add(ready.time_since_epoch(), spread)};
    const Instant wake = std::min(jittered, std::max(deadline, ready));
    if (clock_.now() >= wake || clock_.sleep_until(wake, stop)) {
      return {WaitStatus::Admitted, ready};
    }
    const Instant at = clock_.now();
    (void)r.cancel_at(at);
    return {WaitStatus::Cancelled, at};
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  static Nanos cancel_reservation(void* self, Reservation& r, Instant now) noexcept {
    return static_cast<GcraLimiter*>(self)->refund(internal::ReservationAccess::fields(r), now);
  }

  // Gives back what `gcra_refund` allows for a reservation, and returns it.
  Nanos refund(const internal::ReservationAccess::Fields& f, Instant now) noexcept {
    const auto before = static_cast<std::int64_t>(f.before);
    const auto after = static_cast<std::int64_t>(f.after);
    std::int64_t state = state_.load(std::memory_order_acquire);
    while (true) {
      const std::int64_t next = gcra_refund(state, before, after, f.charge, now, params_);
      if (next >= state) return Nanos::zero();
      if (internal::commit_word(state_, state, next)) {
        // Restoring the state before an idle limiter's reservation moves it by more than the
        // charge; what was given back is the charge.
        const auto moved = static_cast<std::uint64_t>(state) - static_cast<std::uint64_t>(next);
        return Nanos{static_cast<std::int64_t>(std::min(moved, f.charge))};
      }
    }
  }

  static Nanos random_jitter(Nanos jitter) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> pick(0, jitter.count());
    return Nanos{pick(rng)};
  }

  const Quota quota_;
  const GcraParams params_;
  [[no_unique_address]] const C clock_;
  // The theoretical arrival time (gcra_rule.h), alone on its cache line so that neighbours'
  // writes do not slow the compare-and-swap: the members above end before it, and the class's
  // alignment pads its size to a whole line after it.
  alignas(kCacheLineSize) std::atomic<std::int64_t> state_{kGcraFullState};
};

}  // namespace floodgate
