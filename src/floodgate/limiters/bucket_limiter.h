// `BucketLimiter`: the token-bucket family of rate limiters, over a rule: `GcraRule` (exact, in
// integer nanoseconds; `GcraLimiter`) or `TokenBucketRule` (x/time/rate's real-valued rate;
// `TokenBucketLimiter`). Most code names those two; this header holds what they share.
//
// Thread-safety: with `Threads::Many` (the default) every member may be called from any number
// of threads at once. Deciding and peeking are lock-free and never allocate: a decision takes
// effect at one compare-and-swap on one 64-bit word, or at one read for a denial or a peek, and
// calls between changes of quota are linearizable. Reserving and cancelling are lock-free for
// GCRA; the token bucket's take a mutex, because x/time/rate's cancel needs the latest
// reservation's instant read with the state word. `set_quota_at` takes a mutex that only changes
// (and the token bucket's reservations) take; calls that overlap it wait out the few
// instructions of the change (see `set_quota_at` for what they may decide). `acquire` blocks on
// the clock. With `Threads::One`, one thread at a time.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/bucket_cell.h"
#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/limiters/internal/reservation_access.h"
#include "floodgate/limiters/internal/token_bucket_rule.h"
#include "floodgate/limiters/internal/waiting.h"
#include "floodgate/limiters/rate_limiter.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate {

// GCRA: a token bucket of `burst` permits refilled one per `quota.interval()` (whole
// nanoseconds, rounded up so that it never admits more than the quota), kept as one arrival time.
// The rule of `GcraLimiter`, and of `KeyedLimiter` by default.
struct GcraRule {
  using Impl = internal::Gcra;
};

// A token bucket of `burst` tokens refilled continuously at count / period (a real-valued rate,
// x/time/rate's model), kept as the instant the bucket was empty. The rule of
// `TokenBucketLimiter`.
struct TokenBucketRule {
  using Impl = internal::TokenBucket;
};

// A token bucket of `quota.burst()` permits, initially full and refilled at the quota's rate,
// whose whole state is one 64-bit word, decided by `Rule`. `C` is the clock the forms without
// `_at` read; `T` says who may call it.
//
// Guarantees, for any rule:
// - Time is an input: each method has an `_at(Instant now, ...)` form that uses `now` and
//   nothing else. Instants are clamped to about +-146 years around the clock's epoch.
// - Stale time never admits more: concurrent callers that read the clock before calling may
//   arrive with a `now` older than one the limiter has seen. The state only moves forwards, so
//   for every set of calls admitted at instants in [t1, t2], in any order, the admitted cost is
//   at most burst + rate x (t2 - t1).
// - Costs: 0 consumes nothing; a cost above the burst is `ExceedsBurst`, never admitted; any
//   cost up to 2^64 - 1 is answered without overflow.
// - A `now` far in the future consumes at that instant: the limiter trusts the caller's time.
//
//   floodgate::BucketLimiter<floodgate::TokenBucketRule> limiter{quota};  // = TokenBucketLimiter<>
//   floodgate::Reservation r = limiter.reserve(1, std::chrono::milliseconds(100));
//   if (r.allowed()) schedule(r.ready_at(), job);
//   limiter.set_quota(floodgate::Quota::per_second(400));  // an operator's change, live
template <class Rule = GcraRule, Clock C = SteadyClock, Threads T = Threads::Many>
class BucketLimiter {
  using Impl = typename Rule::Impl;
  using Cell = internal::BucketCell<Impl, T>;
  using Snapshot = typename Cell::Snapshot;
  using Fields = internal::ReservationAccess::Fields;

 public:
  // Creates a full bucket that reads time from `clock`.
  explicit BucketLimiter(Quota quota, C clock = C{}) noexcept
      : cell_(quota, Impl::word(Impl::kFull)), clock_(std::move(clock)) {}

  BucketLimiter(const BucketLimiter&) = delete;
  BucketLimiter& operator=(const BucketLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if they are available.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if they are available: `Allowed` (taken), `Denied` (not yet;
  // see `retry_after()`) or `ExceedsBurst` (cost above the burst; never). Inlined, so that a
  // caller pays only for the parts of the decision it reads.
  [[gnu::always_inline]] Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    Snapshot s;
    typename Impl::State next{};
    // Out of line: an instant to clamp, a change of quota that overlapped the read, cost 0 or a
    // cost above the burst, and a lost race. The first three are one test of one word, whose
    // bits above 2 x kTimeLimit each of them sets, so that the common path takes one branch.
    const std::uint64_t racing = cell_.read_racing(s);
    // Every quota has a burst of at least 1, so cost 1 needs no comparison.
    if (Impl::burst(s.params) == 0) __builtin_unreachable();
    const std::int64_t t = now.time_since_epoch().count();
    constexpr std::uint64_t kInRange = 2 * static_cast<std::uint64_t>(internal::kTimeLimit);
    const std::uint64_t rare =
        (static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(internal::kTimeLimit)) |
        (std::uint64_t{0} - racing) |  // Races are far fewer than 2^63: the top bit.
        (std::uint64_t{cost - 1 >= Impl::burst(s.params)} << 63);
    const bool fast = rare <= kInRange;
    // One decision object for both paths lets the compiler build it where the caller reads it.
    Decision decision = fast ? Impl::admit(Impl::state(s.word), t, cost, s.params, next)
                             : Decision(Verdict::Denied, 0, 0, 1, Nanos::zero(), Nanos::zero());
    if (!fast || (decision.allowed() && !cell_.commit(s, Impl::word(next)))) [[unlikely]] {
      decision = try_acquire_slow(now, cost);
    } else if constexpr (Impl::kTracksLastEvent) {
      if (decision.allowed()) note_admission(t);
    }
    return decision;
  }

  // Reports what `try_acquire(cost)` would decide at the clock's current instant, consuming
  // nothing.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, consuming nothing. Its `remaining()`
  // counts what would be left after `cost`: `peek_at(now, 0).remaining()` is what is available.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    const Snapshot s = cell_.read();
    return Impl::acquire(Impl::state(s.word), now, cost, s.params).decision;
  }

  // Takes as many permits as are available at the clock's current instant, up to `max_cost`.
  Grant try_acquire_up_to(std::uint64_t max_cost) noexcept {
    return try_acquire_up_to_at(clock_.now(), max_cost);
  }

  // Takes as many permits as are available at `now`, up to `max_cost`, and says how many. When
  // none is available the decision is `Denied`, with `retry_after()` the wait for one.
  Grant try_acquire_up_to_at(Instant now, std::uint64_t max_cost) noexcept {
    const Grant grant = internal::update(cell_, [&](const Snapshot& s) {
      const auto state = Impl::state(s.word);
      const std::uint64_t permits = Impl::available(state, now, max_cost, s.params);
      // None available: answer for one permit, or for none if none was asked for.
      const std::uint64_t cost = permits > 0 ? permits : std::min<std::uint64_t>(max_cost, 1);
      const auto step = Impl::acquire(state, now, cost, s.params);
      return std::pair{permits > 0 ? Impl::word(step.state) : s.word,
                       Grant{permits, step.decision}};
    });
    if (grant.allowed()) note_admission(internal::clamped_nanos(now));
    return grant;
  }

  // Returns the permits available at `now` as a real number: at most the burst, and negative
  // while reservations have put the limiter in debt (x/time/rate's `TokensAt`).
  double tokens_at(Instant now) const noexcept {
    const Snapshot s = cell_.read();
    return Impl::tokens(Impl::state(s.word), now, s.params);
  }

  // Reserves `cost` permits at the clock's current instant; see `reserve_at`.
  Reservation reserve(std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    return reserve_at(clock_.now(), cost, max_delay);
  }

  // Takes `cost` permits at `now` for use from the reservation's `ready_at()`: `now` if they
  // are available, else the instant at which they will be. Unlike `try_acquire_at`, a granted
  // reservation may put the limiter in debt, and callers after it wait until the debt is repaid;
  // reservations are honoured in the order they are made. A reservation whose wait would exceed
  // `max_delay` is `Denied` and takes nothing, as is one that would put the limiter more than
  // about 146 years in debt; a cost above the burst is `ExceedsBurst`. `reserve_at(now, n, 0ns)`
  // is a `try_acquire_at` that can be cancelled. Lock-free for GCRA (see the top of this file).
  Reservation reserve_at(Instant now, std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    const auto lock = lock_events();
    const Fields f = internal::update(cell_, [&](const Snapshot& s) {
      const auto step = Impl::reserve(Impl::state(s.word), now, cost, max_delay, s.params);
      const Fields granted{
          .verdict = step.verdict,
          .cancelled = false,
          .ready_at = Instant{Nanos{step.at}},
          .cost = cost,
          .charge = std::bit_cast<std::uint64_t>(Impl::charge(cost, s.params)),
          .before = s.word,
          .after = Impl::word(step.state),
          .version = s.version,
      };
      return std::pair{step.verdict == Verdict::Allowed ? granted.after : s.word, granted};
    });
    if (f.verdict == Verdict::Allowed) note_reservation(f.ready_at.time_since_epoch().count());
    return internal::ReservationAccess::make(f, this, &cancel);
  }

  // Blocks until `cost` permits are taken and ready, and returns `Allowed` with the instant
  // they were ready, never later than `deadline`; or returns at once, taking nothing, with
  // `DeadlineTooSoon` if they would not be ready by `deadline` (x/time/rate's rule: nobody
  // sleeps only to fail; a deadline already past refuses even free permits) or `ExceedsBurst`; or
  // returns `Cancelled` when `stop` is requested while waiting, after giving the permits back.
  // Waiters are served in the order they called. `jitter` spreads wake-ups: each wakes at a
  // uniformly random instant in [ready, ready + jitter], never past the deadline. Requires a clock
  // that can sleep; with `ManualClock` it wakes when the test moves the clock.
  WaitResult acquire(std::uint64_t cost, Instant deadline, std::stop_token stop = {},
                     Nanos jitter = Nanos::zero()) requires SleepingClock<C> {
    return internal::wait_for(*this, clock_, cost, deadline, stop, jitter);
  }

  // Changes the quota at the clock's current instant; see `set_quota_at`.
  void set_quota(Quota quota, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    set_quota_at(quota, clock_.now(), policy);
  }

  // Changes the quota at `now` while other threads keep calling, keeping the permits in use as
  // `policy` says (by default the permits remaining, capped at the new burst). Setting the
  // quota in force changes nothing unless the policy is `StartFull`. Memory does not grow.
  //
  // Calls that do not overlap the change are decided exactly under the quota in force. A call
  // that overlaps it may be decided under either quota, and if decided under the old one its
  // charge may count under the new one as it is, so near the change the limiter may admit a
  // little more or less than either quota alone would (x/time/rate's `SetLimitAt` makes the
  // same allowance). Reservations granted before the change keep their `ready_at()`, and
  // cancelling one gives nothing back. Changes are serialized by a mutex.
  void set_quota_at(Quota quota, Instant now, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    cell_.change(quota, policy == OnQuotaChange::StartFull,
                 [&](std::uint64_t word, const auto& from, const auto& to) {
                   return Impl::word(Impl::change_quota(Impl::state(word), now, from, to, policy));
                 });
  }

  // Returns the quota in force.
  Quota quota() const { return cell_.quota(); }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  // `try_acquire_at` for cost 0, a cost above the burst, a lost race or a change in progress.
  [[gnu::noinline, gnu::cold]] Decision try_acquire_slow(Instant now, std::uint64_t cost) noexcept {
    const Decision decision = internal::update(cell_, [&](const Snapshot& s) {
      const auto step = Impl::acquire(Impl::state(s.word), now, cost, s.params);
      return std::pair{Impl::word(step.state), step.decision};
    });
    if (decision.allowed()) note_admission(internal::clamped_nanos(now));
    return decision;
  }

  // Record the ready instant of a granted call for rules whose cancel needs it
  // (x/time/rate's `lastEvent`). An admission is ready at its own instant `t`; storing it only
  // when the record is later than `t` keeps the hot path to a load, and the rule reads an
  // earlier record as `t` (see `TokenBucket::cancel`).
  void note_admission(std::int64_t t) noexcept {
    if constexpr (Impl::kTracksLastEvent) {
      if (cell_.last_event() > t) cell_.set_last_event(t);
    }
  }
  void note_reservation(std::int64_t ready_at) noexcept {
    if constexpr (Impl::kTracksLastEvent) cell_.set_last_event(ready_at);
  }
  // Serializes reservations and cancels for rules that track the latest call's instant.
  std::unique_lock<std::mutex> lock_events() const noexcept {
    if constexpr (Impl::kTracksLastEvent) return cell_.lock_events();
    return {};
  }

  // Gives back what the rule's cancel allows, unless the quota changed since the reservation.
  static Nanos cancel(void* self, const Fields& f, Instant now) noexcept {
    const auto lock = static_cast<BucketLimiter*>(self)->lock_events();
    Cell& cell = static_cast<BucketLimiter*>(self)->cell_;
    const typename Impl::Cancelled r{
        .before = Impl::state(f.before),
        .after = Impl::state(f.after),
        .charge = std::bit_cast<typename Impl::Charge>(f.charge),
        .cost = f.cost,
        .ready_at = f.ready_at.time_since_epoch().count(),
    };
    const auto [given, event] = internal::update(cell, [&](const Snapshot& s) {
      using Result = std::pair<Nanos, std::int64_t>;
      const std::int64_t last_event = cell.last_event();
      if (s.version != f.version) return std::pair{s.word, Result{Nanos::zero(), last_event}};
      const auto step = Impl::cancel(Impl::state(s.word), last_event, r, now, s.params);
      return std::pair{Impl::word(step.state), Result{step.given, step.last_event}};
    });
    if constexpr (Impl::kTracksLastEvent) {
      if (event != cell.last_event()) cell.set_last_event(event);
    }
    return given;
  }

  Cell cell_;
  [[no_unique_address]] const C clock_;
};

}  // namespace floodgate
