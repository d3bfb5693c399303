// `GcraLimiter`: the default floodgate limiter. Lock-free, exact, one 64-bit word of state.
//
// Thread-safe. Every method may be called from any number of threads at once; decisions are
// linearizable (each takes effect atomically at one compare-and-swap, or at one load for a
// denial or a peek). `try_acquire*`, `peek*` and `reserve*` never allocate, lock or throw;
// `cancel`, `set_quota` and `acquire` take a mutex that the others never touch. While the process
// has never started a second thread, an admission is a plain load and store instead of a
// compare-and-swap (see `GcraLimiter`), so a limiter must not be shared with a signal handler that
// may interrupt a call on it, nor placed in memory shared between processes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
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
// see `gcra_refund`), `acquire` blocks until admitted, a deadline or a stop request, and
// `set_quota_at` changes the quota while callers run.
//
// Live reconfiguration. The quota lives beside the state under a sequence number: a caller
// reads the sequence, the state and the quota, and uses them only if the sequence did not move
// (a seqlock); `set_quota_at` makes the sequence odd, carries the state to the new quota with a
// compare-and-swap, and makes it even again. Every decision uses one quota with the state of
// that quota, never a mix. A caller that read the old quota and state and then tries its
// compare-and-swap after a change must fail: the state word is kept as the state plus an offset
// chosen at each change so that the word after a change is larger than any word before it,
// and words only grow between changes (a cancel never takes the word below its value at the
// last change). A word could only repeat after it had grown by 2^64 in all, which needs
// changes of quota whose states lie 2^62 ns (146 years) apart, several times over.
//
// Hot-path cost: an admission is one load and one compare-and-swap; a denial and a peek are one
// load. Both also read the quota and its sequence number, from a line that only `set_quota`
// writes. The state sits alone on a cache line. A compare-and-swap costs 10 to 15 ns on the VMs we
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
      : clock_(std::move(clock)), quota_(quota) {
    store_params(GcraParams::from(quota));
  }

  GcraLimiter(const GcraLimiter&) = delete;
  GcraLimiter& operator=(const GcraLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if they are available.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if they are available. Returns `Allowed` (consumed), `Denied`
  // (not yet; see `retry_after()`) or `ExceedsBurst` (cost > burst; never).
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    Snapshot s = snapshot();
    while (true) {
      const GcraStep step = gcra_acquire(s.tat(), now, cost, s.params);
      if (step.state == s.tat()) return step.decision;  // A denial, or nothing to consume.
      if (internal::commit_word(state_, s.word, s.word_of(step.state))) return step.decision;
      s = snapshot();
    }
  }

  // Reports what `try_acquire(cost)` would decide at the clock's current instant, without
  // consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything. Like that
  // decision, an allowed peek's `remaining()` counts what would be left after `cost`;
  // `peek_at(now, 0).remaining()` is the number of permits available at `now`.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    const Snapshot s = snapshot();
    return gcra_acquire(s.tat(), now, cost, s.params).decision;
  }

  // Admits as many permits as are available at the clock's current instant, up to `max_cost`.
  Grant try_acquire_up_to(std::uint64_t max_cost) noexcept {
    return try_acquire_up_to_at(clock_.now(), max_cost);
  }

  // Admits as many permits as are available at `now`, up to `max_cost`, and says how many.
  // When none are available the decision is `Denied`, with `retry_after()` the wait for one.
  Grant try_acquire_up_to_at(Instant now, std::uint64_t max_cost) noexcept {
    Snapshot s = snapshot();
    while (true) {
      const std::uint64_t granted = gcra_available(s.tat(), now, max_cost, s.params);
      if (granted == 0) {
        // Answer for one permit, or for none if none was asked for.
        return {0, gcra_acquire(s.tat(), now, max_cost == 0 ? 0 : 1, s.params).decision};
      }
      const GcraStep step = gcra_acquire(s.tat(), now, granted, s.params);
      if (internal::commit_word(state_, s.word, s.word_of(step.state))) {
        return {granted, step.decision};
      }
      s = snapshot();
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
  // wait until the debt is repaid. Lock-free.
  Reservation reserve_at(Instant now, std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    Snapshot s = snapshot();
    while (true) {
      const GcraReserveStep step = gcra_reserve(s.tat(), now, cost, max_delay, s.params);
      const internal::ReservationAccess::Fields f{
          .verdict = step.verdict,
          .cancelled = false,
          .ready_at = Instant{Nanos{step.at}},
          .cost = cost,
          .charge = cost * static_cast<std::uint64_t>(s.params.interval),
          .before = s.word,
          .after = s.word_of(step.state),
          .generation = s.generation,
      };
      if (step.verdict != Verdict::Allowed || f.after == s.word ||
          internal::commit_word(state_, s.word, f.after)) {
        return internal::ReservationAccess::make(f, this, &GcraLimiter::cancel_reservation);
      }
      s = snapshot();
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
  // its permits are ready. When the quota changes while a caller waits, the wait is carried to
  // the new quota (see `set_quota_at`) and the caller sleeps until its new instant. Requires a
  // clock that can sleep (`SleepingClock`; `ManualClock` in tests, which never sleeps for real).
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
    const Nanos spread = jitter > Nanos::zero() ? random_jitter(jitter) : Nanos::zero();
    while (true) {
      std::stop_token changed;
      {
        std::lock_guard<std::mutex> lock(change_mu_);
        carry(internal::ReservationAccess::fields(r));
        if (!change_.stop_possible()) change_ = std::stop_source{};  // Made on first use.
        changed = change_.get_token();
      }
      const Instant ready = r.ready_at();
      const Instant jittered{internal::saturating_add(ready.time_since_epoch(), spread)};
      const Instant wake = std::min(jittered, std::max(deadline, ready));
      if (clock_.now() >= wake) return {WaitStatus::Admitted, ready};
      std::stop_source either;
      const auto wake_either = [&either] { either.request_stop(); };
      std::stop_callback on_stop(stop, wake_either);
      std::stop_callback on_change(changed, wake_either);
      if (clock_.sleep_until(wake, either.get_token())) return {WaitStatus::Admitted, ready};
      if (stop.stop_requested()) {
        const Instant at = clock_.now();
        (void)r.cancel_at(at);
        return {WaitStatus::Cancelled, at};
      }
      // Otherwise the quota changed: carry the reservation over and sleep again.
    }
  }

  // Changes the quota at the clock's current instant; see `set_quota_at`.
  void set_quota(Quota quota, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    set_quota_at(quota, clock_.now(), policy);
  }

  // Changes the quota at `now` while other threads keep calling, carrying the permits used as
  // `policy` says (`gcra_change_quota`; by default the remaining permits stay, capped at the
  // new burst). Each concurrent call is decided wholly under the old quota or wholly under the
  // new one. Reservations made under the old quota keep their place in the queue, their ready
  // instants carried through the same map, and sleeping waiters are woken to re-read theirs.
  // A reservation made two or more changes ago keeps its instant and can no longer be refunded.
  // Takes the limiter's mutex; callers of `try_acquire*` spin (yielding) for the few
  // instructions the change takes.
  void set_quota_at(Quota quota, Instant now, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    std::stop_source woken;
    {
      std::lock_guard<std::mutex> lock(change_mu_);
      const std::uint64_t generation = generation_.load(std::memory_order_relaxed);
      const GcraParams from = load_params();
      const GcraParams to = GcraParams::from(quota);
      const std::uint64_t from_offset = offset_.load(std::memory_order_relaxed);
      // Odd: readers wait. The fence orders this store before the writes below for any reader
      // that sees one of them (the seqlock's writer side).
      generation_.store(generation + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      // Park the word on a value it never held, so that no compare-and-swap prepared before
      // the change can succeed, and read the last state under the old quota.
      std::uint64_t word = state_.load(std::memory_order_acquire);
      std::uint64_t parked = 0;
      do {
        parked = std::max(high_water_, word) + 1;
      } while (!state_.compare_exchange_weak(word, parked, std::memory_order_acq_rel,
                                             std::memory_order_acquire));
      const std::int64_t tat =
          gcra_change_quota(static_cast<std::int64_t>(word - from_offset), now, from, to, policy);
      const std::uint64_t next = parked + 1;
      const std::uint64_t to_offset = next - static_cast<std::uint64_t>(tat);
      store_params(to);
      offset_.store(to_offset, std::memory_order_relaxed);
      state_.store(next, std::memory_order_release);
      generation_.store(generation + 2, std::memory_order_release);
      high_water_ = next;
      floor_ = next;
      last_change_ = {generation, generation + 2, now, from, to, from_offset, to_offset, policy};
      quota_ = quota;
      woken = std::exchange(change_, std::stop_source{std::nostopstate});
    }
    woken.request_stop();  // Outside the lock: waiters re-read their instants under it.
  }

  // Returns the quota.
  Quota quota() const {
    std::lock_guard<std::mutex> lock(change_mu_);
    return quota_;
  }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  // The state and the quota it belongs to, read together (or read again).
  struct Snapshot {
    std::uint64_t generation;
    std::uint64_t word;
    std::uint64_t offset;
    GcraParams params;

    std::int64_t tat() const noexcept { return static_cast<std::int64_t>(word - offset); }
    std::uint64_t word_of(std::int64_t tat) const noexcept {
      return static_cast<std::uint64_t>(tat) + offset;
    }
  };

  // What the last `set_quota_at` did, to carry reservations made before it.
  struct Change {
    std::uint64_t from_generation = 1;  // Odd: matches no reservation until a change happens.
    std::uint64_t to_generation = 0;
    Instant at{};
    GcraParams from{};
    GcraParams to{};
    std::uint64_t from_offset = 0;
    std::uint64_t to_offset = 0;
    OnQuotaChange policy = OnQuotaChange::KeepRemaining;
  };

  Snapshot snapshot() const noexcept {
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    const Snapshot s{generation, state_.load(std::memory_order_acquire),
                     offset_.load(std::memory_order_relaxed), load_params()};
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((generation & 1) == 0 && generation_.load(std::memory_order_relaxed) == generation)
        [[likely]] {
      return s;
    }
    return snapshot_during_change();
  }

  // A quota change is in progress: it takes a few instructions, so yield and read again.
  [[gnu::noinline, gnu::cold]] Snapshot snapshot_during_change() const noexcept {
    while (true) {
      std::this_thread::yield();
      const std::uint64_t generation = generation_.load(std::memory_order_acquire);
      const Snapshot s{generation, state_.load(std::memory_order_acquire),
                       offset_.load(std::memory_order_relaxed), load_params()};
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((generation & 1) == 0 && generation_.load(std::memory_order_relaxed) == generation) {
        return s;
      }
    }
  }

  GcraParams load_params() const noexcept {
    return {interval_.load(std::memory_order_relaxed), window_.load(std::memory_order_relaxed),
            burst_.load(std::memory_order_relaxed)};
  }

  void store_params(const GcraParams& p) noexcept {
    interval_.store(p.interval, std::memory_order_relaxed);
    window_.store(p.window, std::memory_order_relaxed);
    burst_.store(p.burst, std::memory_order_relaxed);
  }

  // Brings a reservation made under the previous quota to the current one (under `change_mu_`).
  void carry(internal::ReservationAccess::Fields& f) const {
    const std::uint64_t current = generation_.load(std::memory_order_relaxed);
    if (f.generation == current || f.verdict != Verdict::Allowed) return;
    if (f.generation != last_change_.from_generation) {
      f.generation = 1;  // Odd: never current again, so never refunded.
      return;
    }
    const Change& c = last_change_;
    const auto carried = [&](std::uint64_t word) {
      return gcra_change_quota(static_cast<std::int64_t>(word - c.from_offset), c.at, c.from, c.to,
                               c.policy);
    };
    const std::int64_t after = carried(f.after);
    if (f.ready_at > c.at) {
      // Still waiting at the change: ready when its carried state fits the new window.
      f.ready_at = std::max(c.at, Instant{Nanos{after - c.to.window}});
    }
    f.before = static_cast<std::uint64_t>(carried(f.before)) + c.to_offset;
    f.after = static_cast<std::uint64_t>(after) + c.to_offset;
    __extension__ using Wide = unsigned __int128;
    f.charge = static_cast<std::uint64_t>(static_cast<Wide>(f.charge) *
                                          static_cast<std::uint64_t>(c.to.interval) /
                                          static_cast<std::uint64_t>(c.from.interval));
    f.generation = current;
  }

  static Nanos cancel_reservation(void* self, Reservation& r, Instant now) noexcept {
    return static_cast<GcraLimiter*>(self)->refund(internal::ReservationAccess::fields(r), now);
  }

  // Gives back what `gcra_refund` allows for a reservation, and returns it.
  Nanos refund(internal::ReservationAccess::Fields& f, Instant now) noexcept {
    std::lock_guard<std::mutex> lock(change_mu_);
    carry(f);
    if (f.generation != generation_.load(std::memory_order_relaxed)) return Nanos::zero();
    const std::uint64_t offset = offset_.load(std::memory_order_relaxed);
    const GcraParams params = load_params();
    const auto tat_of = [offset](std::uint64_t word) {
      return static_cast<std::int64_t>(word - offset);
    };
    std::uint64_t word = state_.load(std::memory_order_acquire);
    while (true) {
      const std::int64_t tat =
          gcra_refund(tat_of(word), tat_of(f.before), tat_of(f.after), f.charge, now, params);
      // Never below the word at the last change: words must not repeat across changes.
      const std::uint64_t next = std::max(static_cast<std::uint64_t>(tat) + offset, floor_);
      if (next >= word) return Nanos::zero();
      high_water_ = std::max(high_water_, word);
      if (state_.compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        // Restoring the state before an idle limiter's reservation moves the word by more
        // than the charge; what was given back is the charge.
        return Nanos{static_cast<std::int64_t>(std::min(word - next, f.charge))};
      }
    }
  }

  static Nanos random_jitter(Nanos jitter) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> pick(0, jitter.count());
    return Nanos{pick(rng)};
  }

  [[no_unique_address]] const C clock_;

  // One cache line holds everything a decision reads: the state word (gcra_rule.h's
  // theoretical arrival time, plus `offset_`), and the quota with its sequence number, which
  // only `set_quota_at` writes (under `change_mu_`): the seqlock. A contended call moves one
  // line between cores, not two.
  alignas(kCacheLineSize) std::atomic<std::uint64_t> state_{
      static_cast<std::uint64_t>(kGcraFullState) + (std::uint64_t{1} << 63)};
  std::atomic<std::uint64_t> generation_{0};  // Odd while a change is in progress.
  std::atomic<std::int64_t> interval_{0};
  std::atomic<std::int64_t> window_{0};
  std::atomic<std::uint64_t> burst_{0};
  // The state word is the theoretical arrival time plus this, modulo 2^64. It starts at 2^63 so
  // that words grow with the state without wrapping.
  std::atomic<std::uint64_t> offset_{std::uint64_t{1} << 63};

  // Cold: reconfiguration, refunds and waiters.
  alignas(kCacheLineSize) mutable std::mutex change_mu_;
  Quota quota_;                   // Guarded by `change_mu_`.
  std::uint64_t high_water_ = 0;  // The largest word before a refund lowered it; `change_mu_`.
  std::uint64_t floor_ = 0;       // The word just after the last change; `change_mu_`.
  Change last_change_;            // Guarded by `change_mu_`.
  // Stopped at each change, to wake waiters; made by the first waiter. Guarded by `change_mu_`.
  std::stop_source change_{std::nostopstate};
};

}  // namespace floodgate
