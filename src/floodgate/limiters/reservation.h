// `Reservation` (capacity taken now, to be used at a later instant, with an exact refund) and
// `WaitResult` (what a blocking `acquire` did): the vocabulary of limiters that let callers wait
// their turn instead of only hearing yes or no. A `Reservation` is a move-only value; it is not
// thread-safe (one owner), and must not outlive the limiter that made it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

#include "floodgate/core/decision.h"
#include "floodgate/core/time.h"

namespace floodgate {

namespace internal {
struct ReservationAccess;
}  // namespace internal

// Permits taken from a limiter now, to be used from `ready_at()` on. A granted reservation
// counts against the quota from the moment it is made, so later callers queue behind it
// (reservations are honoured in the order they were made); `cancel_at` gives back what can be
// given back (each limiter's header says exactly how much).
//
//   floodgate::Reservation r = limiter.reserve_at(now, 3);
//   if (!r.ok()) return reply_429();             // cost above the burst, or too far ahead
//   schedule(r.ready_at(), std::move(work));     // run the work then, no thread blocked
//   ...
//   if (client_went_away) r.cancel_at(now);      // the permits go back to the limiter
class [[nodiscard]] Reservation {
 public:
  // A reservation that was never granted (`ok()` is false).
  Reservation() = default;

  // A moved-from reservation is not `ok()` and cancels nothing.
  Reservation(Reservation&& other) noexcept
      : f_(std::exchange(other.f_, Fields{})),
        owner_(std::exchange(other.owner_, nullptr)),
        ops_(std::exchange(other.ops_, nullptr)) {}
  Reservation& operator=(Reservation&& other) noexcept {
    f_ = std::exchange(other.f_, Fields{});
    owner_ = std::exchange(other.owner_, nullptr);
    ops_ = std::exchange(other.ops_, nullptr);
    return *this;
  }
  Reservation(const Reservation&) = delete;  // One owner: a copy could be cancelled twice.
  Reservation& operator=(const Reservation&) = delete;

  // Reports whether the reservation was granted and has not been cancelled.
  bool ok() const noexcept { return f_.verdict == Verdict::Allowed && !f_.cancelled; }
  explicit operator bool() const noexcept { return ok(); }

  // Returns `Allowed` (granted), `Denied` (its wait would have passed the limit the caller set;
  // nothing was taken) or `ExceedsBurst` (the cost is above the burst; never possible).
  Verdict verdict() const noexcept { return f_.verdict; }

  // Returns the instant from which the reserved permits may be used. For a reservation refused
  // as `Denied`, the instant it would have had. It is fixed when the reservation is granted;
  // after a change of the limiter's quota, `refresh` brings it up to date.
  Instant ready_at() const noexcept { return f_.ready_at; }

  // Re-reads the reservation's place under the limiter's current quota, if it changed since the
  // reservation was granted (`set_quota`): `ready_at()` then says when the permits are ready
  // under the new quota, and `cancel_at` refunds in its terms. A server that scheduled work for
  // `ready_at()` calls it when the work comes due, and waits again if `delay_from(now)` is not
  // zero. Lock-free; does nothing for a reservation that is not `ok()` or a limiter whose quota
  // never changes.
  void refresh() noexcept {
    if (ok() && ops_ != nullptr && ops_->refresh != nullptr) ops_->refresh(owner_, *this);
  }

  // Returns how long after `now` the permits may be used: zero once `ready_at()` has come, and
  // `kNever` when the reservation is not `ok()`.
  Nanos delay_from(Instant now) const noexcept {
    if (!ok()) return kNever;
    return std::max(Nanos::zero(),
                    Nanos{internal::saturating_sub(f_.ready_at.time_since_epoch().count(),
                                                   now.time_since_epoch().count())});
  }

  // Returns the permits reserved.
  std::uint64_t cost() const noexcept { return f_.cost; }

  // Reports whether `cancel_at` has been called on the granted reservation.
  bool is_cancelled() const noexcept { return f_.cancelled; }

  // Gives the reservation back to its limiter at `now` and returns the capacity returned, as
  // refill time (divide by the quota's interval for permits). The limiter's header defines the
  // refund; cancelling the most recent reservation restores the limiter exactly. Calling it
  // again, or on a reservation that was not granted, returns zero and changes nothing.
  Nanos cancel_at(Instant now) noexcept {
    if (!ok() || ops_ == nullptr) return Nanos::zero();
    f_.cancelled = true;
    return ops_->cancel(owner_, *this, now);
  }

 private:
  friend struct internal::ReservationAccess;

  // What the owning limiter needs to refund exactly; opaque to users.
  struct Fields {
    Verdict verdict = Verdict::Denied;
    bool cancelled = false;
    Instant ready_at{};
    std::uint64_t cost = 0;
    std::uint64_t charge = 0;     // The capacity taken, in the limiter's units.
    std::uint64_t before = 0;     // The limiter's state word before it ...
    std::uint64_t after = 0;      // ... and after it.
    const void* epoch = nullptr;  // Which of the limiter's quotas those states belong to.
  };

  // What the owning limiter does for a reservation.
  struct Ops {
    Nanos (*cancel)(void* owner, Reservation& r, Instant now) noexcept;
    void (*refresh)(void* owner, Reservation& r) noexcept;  // Null: the quota never changes.
  };

  Fields f_;
  void* owner_ = nullptr;
  const Ops* ops_ = nullptr;
};

namespace internal {

// How limiters build and read reservations.
struct ReservationAccess {
  using Fields = Reservation::Fields;
  using Ops = Reservation::Ops;
  static Reservation::Fields& fields(Reservation& r) noexcept { return r.f_; }
  static const Reservation::Fields& fields(const Reservation& r) noexcept { return r.f_; }
  static Reservation make(const Reservation::Fields& f, void* owner, const Ops* ops) noexcept {
    Reservation r;
    r.f_ = f;
    r.owner_ = owner;
    r.ops_ = ops;
    return r;
  }
};

}  // namespace internal

// What a blocking `acquire` did.
enum class WaitStatus : std::uint8_t {
  Admitted,         // The permits were taken; the caller may proceed.
  DeadlineTooSoon,  // The wait would have passed the deadline: returned at once, took nothing.
  ExceedsBurst,     // The cost is above the burst: no wait could admit it; took nothing.
  Cancelled,        // The stop token was triggered while waiting; the reservation was cancelled.
};

// Returns "Admitted", "DeadlineTooSoon", "ExceedsBurst" or "Cancelled".
constexpr std::string_view to_string(WaitStatus status) noexcept {
  switch (status) {
    case WaitStatus::Admitted:
      return "Admitted";
    case WaitStatus::DeadlineTooSoon:
      return "DeadlineTooSoon";
    case WaitStatus::ExceedsBurst:
      return "ExceedsBurst";
    case WaitStatus::Cancelled:
      return "Cancelled";
  }
  return "?";
}

// The outcome of a blocking `acquire`.
struct [[nodiscard]] WaitResult {
  WaitStatus status;
  // `Admitted`: the instant the permits were ready (the caller returned at or after it).
  // `DeadlineTooSoon`: the instant they would have been ready. `Cancelled`: when the wait
  // stopped. `ExceedsBurst`: unspecified.
  Instant at;

  // Reports whether the permits were taken.
  bool admitted() const noexcept { return status == WaitStatus::Admitted; }
  explicit operator bool() const noexcept { return admitted(); }
};

}  // namespace floodgate
