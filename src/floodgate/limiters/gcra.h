// `GcraLimiter`: the default floodgate limiter. Lock-free, exact, one 64-bit word of state.
//
// Thread-safe. Every method may be called from any number of threads at once; decisions are
// linearizable (each takes effect atomically at one compare-and-swap, or at one load for a
// denial or a peek). `try_acquire*`, `peek*`, `reserve*` and `Reservation::cancel_at` never
// allocate, lock or throw; `acquire` blocks on the clock; `set_quota` allocates and takes a mutex
// that only it and waiters in `acquire` take. While the
// process has never started a second thread, an admission is a plain load and store instead of a
// compare-and-swap (see `GcraLimiter`), so a limiter must not be shared with a signal handler that
// may interrupt a call on it, nor placed in memory shared between processes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stop_token>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/epochs.h"
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
// `set_quota_at` changes the rate and burst while callers run (see there).
//
// Hot-path cost: an admission is two loads (the current quota's epoch, then its state) and one
// compare-and-swap; a denial and a peek are the loads. The state shares its cache line only with
// its quota's parameters, which nothing writes. A compare-and-swap costs 10 to 15 ns on the VMs we
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
      : clock_(std::move(clock)), epochs_(quota, word(kGcraFullState)) {}

  GcraLimiter(const GcraLimiter&) = delete;
  GcraLimiter& operator=(const GcraLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if they are available.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if they are available. Returns `Allowed` (consumed), `Denied`
  // (not yet; see `retry_after()`) or `ExceedsBurst` (cost > burst; never).
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    Epoch& e = epochs_.current();
    std::uint64_t state = e.state.load(std::memory_order_acquire);
    // One comparison stands for the three rare cases, decided out of line: cost 0, a cost above
    // the burst, and a quota change (which closes the gate to 0; floodgate/limiters/epochs.h).
    if (cost - 1 >= e.gate.load(std::memory_order_relaxed)) [[unlikely]] {
      return try_acquire_rare(now, cost);
    }
    while (true) {
      const GcraStep step = gcra_admit(tat(state), now, cost, e.params);
      if (step.state == tat(state)) return step.decision;  // A denial.
      if (internal::commit_word(e.state, state, word(step.state))) return step.decision;
      if (state == internal::kSealedWord) [[unlikely]]
        return try_acquire_rare(now, cost);
    }
  }

  // Reports what `try_acquire(cost)` would decide at the clock's current instant, without
  // consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything. Like that
  // decision, an allowed peek's `remaining()` counts what would be left after `cost`;
  // `peek_at(now, 0).remaining()` is the number of permits available at `now`.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    Epoch* e = &epochs_.current();
    const std::uint64_t state = epochs_.load_live(e);
    return gcra_acquire(tat(state), now, cost, e->params).decision;
  }

  // Admits as many permits as are available at the clock's current instant, up to `max_cost`.
  Grant try_acquire_up_to(std::uint64_t max_cost) noexcept {
    return try_acquire_up_to_at(clock_.now(), max_cost);
  }

  // Admits as many permits as are available at `now`, up to `max_cost`, and says how many.
  // When none are available the decision is `Denied`, with `retry_after()` the wait for one.
  Grant try_acquire_up_to_at(Instant now, std::uint64_t max_cost) noexcept {
    return epochs_.update(&epochs_.current(), [&](const Epoch& e, std::uint64_t state) {
      const std::uint64_t granted = gcra_available(tat(state), now, max_cost, e.params);
      // None available: answer for one permit, or for none if none was asked for.
      const std::uint64_t cost = granted > 0 ? granted : std::min<std::uint64_t>(max_cost, 1);
      const GcraStep step = gcra_acquire(tat(state), now, cost, e.params);
      return std::pair{granted > 0 ? word(step.state) : state, Grant{granted, step.decision}};
    });
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
    const Fields f = epochs_.update(&epochs_.current(), [&](const Epoch& e, std::uint64_t state) {
      const GcraReserveStep step = gcra_reserve(tat(state), now, cost, max_delay, e.params);
      const Fields g{
          .verdict = step.verdict,
          .cancelled = false,
          .ready_at = Instant{Nanos{step.at}},
          .cost = cost,
          .charge = cost * static_cast<std::uint64_t>(e.params.interval),
          .before = state,
          .after = word(step.state),
          .epoch = &e,
      };
      return std::pair{step.verdict == Verdict::Allowed ? g.after : state, g};
    });
    return internal::ReservationAccess::make(f, this, &kReservationOps);
  }

  // Blocks until `cost` permits are taken, and returns `Admitted`; or returns at once, taking
  // nothing, with `DeadlineTooSoon` if they would not be ready by `deadline` (x/time/rate's
  // rule: no caller sleeps only to fail) or `ExceedsBurst` if the cost is above the burst; or
  // returns `Cancelled` when `stop` is requested while waiting, after cancelling the
  // reservation (`Reservation::cancel_at`).
  //
  // Waiters are served in the order they reserved. `jitter` spreads their wake-ups: each wakes at
  // a uniformly random instant in [ready, ready + jitter], capped at the deadline, never before
  // its permits are ready. When the quota changes while a caller waits, its reservation is
  // carried to the new quota (see `set_quota_at`) and it sleeps until its new ready instant,
  // even one past the deadline: the permits are taken, so it waits for them. Requires a clock
  // that can sleep (`SleepingClock`; in tests `ManualClock`, which never sleeps for real).
  WaitResult acquire(std::uint64_t cost, Instant deadline, std::stop_token stop = {},
                     Nanos jitter = Nanos::zero()) requires SleepingClock<C> {
    return internal::acquire_on(*this, clock_, epochs_, cost, deadline, stop, jitter,
                                [](Fields& f, const Epoch& to) { carry(f, &to); });
  }

  // Changes the quota at the clock's current instant; see `set_quota_at`.
  void set_quota(Quota quota, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    set_quota_at(quota, clock_.now(), policy);
  }

  // Changes the quota at `now` while other threads keep calling, carrying the permits already
  // used as `policy` says (`gcra_change_quota`: by default the remaining permits stay, capped
  // at the new burst). Each concurrent call is decided wholly under the old quota or wholly
  // under the new one; under `KeepRemaining` no window of caller instants sees more admitted
  // than the larger of the two quotas allows, for a `now` no earlier than the calls decided
  // before the change (`gcra_change_quota`; `set_quota` reads the callers' clock). Reservations
  // keep their place in the queue: their states are carried through the same map, their ready
  // instants become the instants at which their carried states fit the new window, sleeping waiters
  // in `acquire` wake to read theirs, and `cancel_at` refunds a reservation made before the change
  // as `gcra_refund` would have after it (exactly, for the most recent one).
  //
  // Setting the quota it already has changes nothing (unless `StartFull`). Otherwise the change
  // costs the calls that race with it a second try, and keeps one epoch (128 bytes on x86-64)
  // until the limiter is destroyed (floodgate/limiters/epochs.h says why): a change a second
  // grows a limiter by 11 MB a day. It is meant for operators and configuration reloads, not for
  // a controller that retunes the quota continuously. Thread-safe; changes are serialized by a
  // mutex that only they and waiters in `acquire` take.
  void set_quota_at(Quota quota, Instant now, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    epochs_.change(quota, now, policy, [](std::uint64_t state, const Epoch& from, const Epoch& to) {
      return word(gcra_change_quota(tat(state), to.changed_at, from.params, to.params, to.policy));
    });
  }

  // Returns the current quota.
  Quota quota() const noexcept { return epochs_.current().quota; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  using Epoch = internal::Epoch<GcraParams>;
  using Fields = internal::ReservationAccess::Fields;

  // The state word holds the theoretical arrival time's bits.
  static constexpr std::int64_t tat(std::uint64_t word) noexcept {
    return static_cast<std::int64_t>(word);
  }
  static constexpr std::uint64_t word(std::int64_t tat) noexcept {
    return static_cast<std::uint64_t>(tat);
  }

  // `try_acquire_at` for cost 0, a cost above the burst, or a limiter whose quota is changing.
  [[gnu::noinline, gnu::cold]] Decision try_acquire_rare(Instant now, std::uint64_t cost) noexcept {
    // The epoch's own parameters, not its gate: a state not yet sealed is still the old
    // quota's, and a call that commits on it comes before the change.
    return epochs_.update(&epochs_.current(), [&](const Epoch& e, std::uint64_t state) {
      const GcraStep step = gcra_acquire(tat(state), now, cost, e.params);
      return std::pair{word(step.state), step.decision};
    });
  }

  // Carries a reservation's states to epoch `to` through the changes since it was made: each
  // state by the change's own map, the charge as the difference (the map is non-decreasing),
  // and a ready instant still to come at the change to the instant its carried state fits the
  // new window.
  static void carry(Fields& f, const Epoch* to) noexcept {
    internal::Epochs<GcraParams>::carry_reservation(
        f, to, [](Fields& g, const Epoch& from, const Epoch& next) {
          const auto carried = [&](std::uint64_t state) {
            return gcra_change_quota(tat(state), next.changed_at, from.params, next.params,
                                     next.policy);
          };
          const std::int64_t before = carried(g.before);
          const std::int64_t after = carried(g.after);
          if (g.ready_at > next.changed_at) {
            g.ready_at = std::max(next.changed_at, Instant{Nanos{after - next.params.window}});
          }
          g.before = word(before);
          g.after = word(after);
          g.charge = static_cast<std::uint64_t>(after - before);
        });
  }

  static constexpr internal::ReservationAccess::Ops kReservationOps{
      .cancel =
          [](void* self, Reservation& r, Instant now) noexcept {
            return static_cast<GcraLimiter*>(self)->refund(internal::ReservationAccess::fields(r),
                                                           now);
          },
      .refresh =
          [](void* self, Reservation& r) noexcept {
            carry(internal::ReservationAccess::fields(r),
                  &static_cast<GcraLimiter*>(self)->epochs_.current());
          },
  };

  // Gives back what `gcra_refund` allows for a reservation, carried to the current quota if it
  // changed since, and returns it. Lock-free.
  Nanos refund(Fields& f, Instant now) noexcept {
    auto* from = const_cast<Epoch*>(static_cast<const Epoch*>(f.epoch));
    return epochs_.update(from, [&](const Epoch& e, std::uint64_t state) {
      carry(f, &e);
      const std::int64_t next =
          gcra_refund(tat(state), tat(f.before), tat(f.after), f.charge, now, e.params);
      if (next >= tat(state)) return std::pair{state, Nanos::zero()};
      // Restoring the state before an idle limiter's reservation moves it by more than the
      // charge; what was given back is the charge.
      const std::uint64_t moved = state - word(next);
      return std::pair{word(next), Nanos{static_cast<std::int64_t>(std::min(moved, f.charge))}};
    });
  }

  [[no_unique_address]] const C clock_;
  internal::Epochs<GcraParams> epochs_;
};

}  // namespace floodgate
