// `TokenBucketLimiter`: golang.org/x/time/rate's model (a real-valued rate and a burst, starting
// full) in one lock-free 64-bit word, with reservations, blocking waits and live quota changes.
// Thread-safe. `try_acquire*`, `peek*`, `tokens_at` and `reserve*` never allocate, lock or
// throw; `acquire` blocks on the clock; `set_quota` allocates and takes a mutex that no other
// call but `acquire` takes.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <stop_token>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/epochs.h"
#include "floodgate/limiters/reservation.h"
#include "floodgate/limiters/token_bucket_rule.h"

namespace floodgate {

// A token bucket of `quota.burst()` tokens, initially full, refilled continuously at
// `quota.count()` per `quota.period()` (a real-valued rate, so 1 per 3 s is exact up to floating
// point). A call of cost n at instant t is admitted iff at least n tokens are in the bucket at t.
//
//   floodgate::TokenBucketLimiter limiter{floodgate::Quota::per(std::chrono::seconds(3), 1)};
//   limiter.tokens_at(now);  // 1.0, then 0.0 after an admission, then refilling at 1/3 per s.
//
// Semantics:
// - The same decisions as golang.org/x/time/rate's `AllowN(t, n)` with `Limit` = count / period
//   in events per second and the same burst, on any trace with non-decreasing instants, except
//   where a token count lands within floating-point rounding of a whole number.
// - Stale and out-of-order time: unlike x/time/rate (golang/go#71360), never a reason to admit
//   more. The state is the instant at which the bucket was empty (tokens at t = min(burst,
//   (t - empty_at) x rate)); it only moves forwards, so a stale `now` sees no more tokens than a
//   current one, and in every window [t1, t2] of caller instants the admitted cost is at most
//   burst + rate x (t2 - t1).
// - Costs: 0 is always admitted unless the bucket is in debt at a stale `now`; a cost above the
//   burst is `ExceedsBurst`. Instants are clamped as in floodgate/core/time.h.
// - Precision: the state is a double of nanoseconds; its resolution is below 1 ns for instants up
//   to about 52 days from the clock's epoch and about 8 ns after 2 years of uptime, which moves a
//   decision only for calls within that margin of a token boundary.
//
// Waiting and live changes, as `GcraLimiter` offers them and with the same guarantees:
// `reserve_at` (FIFO; the bucket may go into debt), `Reservation::cancel_at` (exact for the
// most recent reservation, otherwise `token_bucket_refund`'s safe part), `acquire` (deadline,
// stop token, jitter) and `set_quota_at` (policies as `token_bucket_change_quota` converts
// them; a call is decided wholly under the old quota or the new one).
//
// Hot-path cost: an admission is one load and one compare-and-swap (a plain store while the
// process is single-threaded; see floodgate/core/concurrency.h); a denial is one load. A
// change of quota keeps one epoch per change until the limiter is destroyed
// (floodgate/limiters/epochs.h).
template <Clock C = SteadyClock>
class TokenBucketLimiter {
 public:
  // Creates a full bucket of `quota.burst()` tokens refilled at count per period.
  explicit TokenBucketLimiter(Quota quota, C clock = C{}) noexcept
      : clock_(std::move(clock)), epochs_(quota, word(kTokenBucketFullState)) {}

  TokenBucketLimiter(const TokenBucketLimiter&) = delete;
  TokenBucketLimiter& operator=(const TokenBucketLimiter&) = delete;

  // Admits `cost` tokens at the clock's current instant if the bucket holds them.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` tokens at `now` if the bucket holds them. Always inlined, so that a caller who
  // reads only part of the `Decision` (say `allowed()`) pays only for that part: computing every
  // field, the waits included, takes the admission from about 3 ns to about 11 ns.
  [[gnu::always_inline]] Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    Epoch& e = epochs_.current();
    std::uint64_t bits = e.state.load(std::memory_order_acquire);
    // Cost 0, a cost above the burst and a quota change go out of line (epochs.h).
    if (cost - 1 >= e.gate.load(std::memory_order_relaxed)) [[unlikely]] {
      return try_acquire_rare(now, cost);
    }
    while (true) {
      const TokenBucketStep step = token_bucket_admit(empty_at(bits), now, cost, e.params);
      if (!step.decision.allowed()) return step.decision;
      if (internal::commit_word(e.state, bits, word(step.state))) return step.decision;
      if (bits == internal::kSealedWord) [[unlikely]]
        return try_acquire_rare(now, cost);
    }
  }

  // Reports what `try_acquire(cost)` would decide now, without consuming anything.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    Epoch* e = &epochs_.current();
    const std::uint64_t bits = epochs_.load_live(e);
    return token_bucket_acquire(empty_at(bits), now, cost, e->params).decision;
  }

  // Returns the tokens in the bucket at `now` (possibly fractional; x/time/rate's `TokensAt`).
  double tokens_at(Instant now) const noexcept {
    Epoch* e = &epochs_.current();
    const std::uint64_t bits = epochs_.load_live(e);
    return internal::bucket_tokens(empty_at(bits),
                                   static_cast<double>(internal::clamped_nanos(now)), e->params);
  }

  // Reserves `cost` tokens at the clock's current instant; see `reserve_at`.
  Reservation reserve(std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    return reserve_at(clock_.now(), cost, max_delay);
  }

  // Takes `cost` tokens at `now` for use from the reservation's `ready_at()`
  // (`token_bucket_reserve`), as `GcraLimiter::reserve_at` does: FIFO, into debt if need be,
  // refused without taking anything past `max_delay` or above the burst. Lock-free.
  Reservation reserve_at(Instant now, std::uint64_t cost = 1, Nanos max_delay = kNever) noexcept {
    const Fields f = epochs_.update(&epochs_.current(), [&](const Epoch& e, std::uint64_t bits) {
      const TokenBucketReserveStep step =
          token_bucket_reserve(empty_at(bits), now, cost, max_delay, e.params);
      const Fields g{
          .verdict = step.verdict,
          .cancelled = false,
          .ready_at = Instant{Nanos{step.at}},
          .cost = cost,
          .charge = word(static_cast<double>(cost) * e.params.ns_per_token),
          .before = bits,
          .after = word(step.state),
          .epoch = &e,
      };
      return std::pair{step.verdict == Verdict::Allowed ? g.after : bits, g};
    });
    return internal::ReservationAccess::make(f, this, &kReservationOps);
  }

  // Blocks until `cost` tokens are taken; see `GcraLimiter::acquire`, whose contract this
  // follows to the letter (deadline, stop token, FIFO order, jitter, quota changes).
  WaitResult acquire(std::uint64_t cost, Instant deadline, std::stop_token stop = {},
                     Nanos jitter = Nanos::zero()) requires SleepingClock<C> {
    return internal::acquire_on(*this, clock_, epochs_, cost, deadline, stop, jitter,
                                [](Fields& f, const Epoch& to) { carry(f, &to); });
  }

  // Changes the quota at the clock's current instant; see `set_quota_at`.
  void set_quota(Quota quota, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    set_quota_at(quota, clock_.now(), policy);
  }

  // Changes the quota at `now` while other threads keep calling, carrying the tokens as
  // `token_bucket_change_quota` converts them; reservations and waiters follow as for
  // `GcraLimiter::set_quota_at`, whose guarantees and costs this shares.
  void set_quota_at(Quota quota, Instant now, OnQuotaChange policy = OnQuotaChange::KeepRemaining) {
    epochs_.change(quota, now, policy, [](std::uint64_t bits, const Epoch& from, const Epoch& to) {
      return word(token_bucket_change_quota(empty_at(bits), to.changed_at, from.params, to.params,
                                            to.policy));
    });
  }

  // Returns the current quota.
  Quota quota() const noexcept { return epochs_.current().quota; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  using Epoch = internal::Epoch<TokenBucketParams>;
  using Fields = internal::ReservationAccess::Fields;

  // The state word holds the bits of `empty_at`, a double (token_bucket_rule.h).
  static double empty_at(std::uint64_t bits) noexcept { return std::bit_cast<double>(bits); }
  static std::uint64_t word(double empty_at) noexcept {
    return std::bit_cast<std::uint64_t>(empty_at);
  }

  // `try_acquire_at` for cost 0, a cost above the burst, or a bucket whose quota is changing.
  [[gnu::noinline, gnu::cold]] Decision try_acquire_rare(Instant now, std::uint64_t cost) noexcept {
    return epochs_.update(&epochs_.current(), [&](const Epoch& e, std::uint64_t bits) {
      const TokenBucketStep step = token_bucket_acquire(empty_at(bits), now, cost, e.params);
      const bool consumed = step.decision.allowed() && cost > 0;
      return std::pair{consumed ? word(step.state) : bits, step.decision};
    });
  }

  // Carries a reservation's states to epoch `to` through the changes since it was made, as
  // `GcraLimiter` does: the ready instant of one still waiting becomes the instant its carried
  // state is repaid.
  static void carry(Fields& f, const Epoch* to) noexcept {
    internal::Epochs<TokenBucketParams>::carry_reservation(
        f, to, [](Fields& g, const Epoch& from, const Epoch& next) {
          const auto carried = [&](std::uint64_t bits) {
            return token_bucket_change_quota(empty_at(bits), next.changed_at, from.params,
                                             next.params, next.policy);
          };
          const double before = carried(g.before);
          const double after = carried(g.after);
          const auto at = static_cast<double>(next.changed_at.time_since_epoch().count());
          if (g.ready_at > next.changed_at) {
            // Instants are clamped well inside the int64 range, so `after` > `at` converts.
            g.ready_at = after > at ? Instant{internal::ceil_nanos(after)} : next.changed_at;
          }
          g.before = word(before);
          g.after = word(after);
          g.charge = word(std::max(0.0, after - before));
        });
  }

  static constexpr internal::ReservationAccess::Ops kReservationOps{
      .cancel =
          [](void* self, Reservation& r, Instant now) noexcept {
            return static_cast<TokenBucketLimiter*>(self)->refund(
                internal::ReservationAccess::fields(r), now);
          },
      .refresh =
          [](void* self, Reservation& r) noexcept {
            carry(internal::ReservationAccess::fields(r),
                  &static_cast<TokenBucketLimiter*>(self)->epochs_.current());
          },
  };

  // Gives back what `token_bucket_refund` allows, carried to the current quota if it changed
  // since, and returns it (rounded to whole nanoseconds). Lock-free.
  Nanos refund(Fields& f, Instant now) noexcept {
    auto* from = const_cast<Epoch*>(static_cast<const Epoch*>(f.epoch));
    return epochs_.update(from, [&](const Epoch& e, std::uint64_t bits) {
      carry(f, &e);
      const double state = empty_at(bits);
      const double charge = empty_at(f.charge);
      const double next =
          token_bucket_refund(state, empty_at(f.before), empty_at(f.after), charge, now, e.params);
      if (!(next < state)) return std::pair{bits, Nanos::zero()};
      // Restoring the state before a full bucket's reservation moves it to -infinity; what was
      // given back is the charge.
      return std::pair{word(next), Nanos{std::llround(std::min(state - next, charge))}};
    });
  }

  [[no_unique_address]] const C clock_;
  internal::Epochs<TokenBucketParams> epochs_;
};

}  // namespace floodgate
