// `Reservation`, permits taken from a bucket limiter now to be used at a later instant, and
// `WaitResult`, what a blocking `acquire` did.
//
// A `Reservation` is a move-only value with one owner: not thread-safe itself, while the limiter
// it came from may be called from any thread. It must not outlive that limiter.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/time.h"

namespace floodgate {

namespace internal {
struct ReservationAccess;
}  // namespace internal

// Permits taken from a limiter (`GcraLimiter::reserve_at`, `TokenBucketLimiter::reserve_at`) for
// use from `ready_at()` on. A reservation counts against the quota from the moment it is made, so
// later callers queue behind it: reservations are honoured in the order they are made.
//
//   floodgate::Reservation r = limiter.reserve_at(now, 3, 100ms);  // wait at most 100 ms
//   if (!r.allowed()) return reply_429();
//   schedule(r.ready_at(), std::move(work));      // run the work then, no thread blocked
//   ...
//   if (client_went_away) r.cancel_at(now);       // the permits go back to the limiter
class [[nodiscard]] Reservation {
 public:
  // A reservation that was never granted.
  Reservation() = default;

  // A moved-from reservation is not allowed and cancels nothing.
  Reservation(Reservation&& other) noexcept
      : f_(std::exchange(other.f_, Fields{})),
        owner_(std::exchange(other.owner_, nullptr)),
        cancel_(std::exchange(other.cancel_, nullptr)) {}
  Reservation& operator=(Reservation&& other) noexcept {
    f_ = std::exchange(other.f_, Fields{});
    owner_ = std::exchange(other.owner_, nullptr);
    cancel_ = std::exchange(other.cancel_, nullptr);
    return *this;
  }
  Reservation(const Reservation&) = delete;  // One owner: a copy could be cancelled twice.
  Reservation& operator=(const Reservation&) = delete;

  // Reports whether the reservation was granted and has not been cancelled.
  bool allowed() const noexcept { return f_.verdict == Verdict::Allowed && !f_.cancelled; }
  explicit operator bool() const noexcept { return allowed(); }

  // Returns `Allowed` (granted), `Denied` (its wait would have passed the `max_delay` the caller
  // set; nothing was taken) or `ExceedsBurst` (the cost is above the burst; never possible).
  Verdict verdict() const noexcept { return f_.verdict; }

  // Returns the instant from which the permits may be used; for a `Denied` reservation, the
  // instant it would have had. It does not change once granted, not even when the limiter's
  // quota changes (see `set_quota_at`).
  Instant ready_at() const noexcept { return f_.ready_at; }

  // Returns how long after `now` the permits may be used: zero once `ready_at()` has come, and
  // `kNever` when the reservation is not `allowed()`.
  Nanos delay_from(Instant now) const noexcept {
    if (!allowed()) return kNever;
    return std::max(Nanos::zero(),
                    Nanos{internal::saturating_sub(f_.ready_at.time_since_epoch().count(),
                                                   now.time_since_epoch().count())});
  }

  // Returns the permits reserved.
  std::uint64_t cost() const noexcept { return f_.cost; }

  // Reports whether `cancel_at` has been called on the granted reservation.
  bool is_cancelled() const noexcept { return f_.cancelled; }

  // Gives the permits back to the limiter at `now` and returns the capacity returned, as refill
  // time (divide by the quota's interval for permits). Past `ready_at()` it gives nothing back:
  // the holder may have used the permits (x/time/rate's `CancelAt` rule). Cancelling the most
  // recent reservation restores the limiter exactly, as if it had never been made; under later
  // reservations `GcraLimiter` gives back the part that cannot let anyone in earlier than
  // without it, and `TokenBucketLimiter` x/time/rate's amount, the tokens less those reserved
  // after it. After a change of the limiter's quota it gives back nothing. Calling it again, or
  // on a reservation that was not granted, returns zero and changes nothing.
  Nanos cancel_at(Instant now) noexcept {
    if (!allowed() || cancel_ == nullptr) return Nanos::zero();
    f_.cancelled = true;
    return cancel_(owner_, f_, now);
  }

 private:
  friend struct internal::ReservationAccess;

  // What the limiter needs to refund exactly, in its own state units.
  struct Fields {
    Verdict verdict = Verdict::Denied;
    bool cancelled = false;
    Instant ready_at{};
    std::uint64_t cost = 0;
    std::uint64_t charge = 0;   // The capacity taken.
    std::uint64_t before = 0;   // The limiter's state before it ...
    std::uint64_t after = 0;    // ... and after it.
    std::uint64_t version = 0;  // The limiter's quota version when it was granted.
  };
  using Cancel = Nanos (*)(void* owner, const Fields& fields, Instant now) noexcept;

  Fields f_;
  void* owner_ = nullptr;
  Cancel cancel_ = nullptr;
};

// What a blocking `acquire` did.
enum class WaitStatus : std::uint8_t {
  Allowed,          // The permits were taken and their instant has come: proceed.
  DeadlineTooSoon,  // They would not be ready by the deadline: returned at once, took nothing.
  ExceedsBurst,     // The cost is above the burst: no wait could admit it; took nothing.
  Cancelled,        // The stop token fired while waiting; the permits were given back.
};

// Returns "Allowed", "DeadlineTooSoon", "ExceedsBurst" or "Cancelled".
constexpr std::string_view to_string(WaitStatus status) noexcept {
  switch (status) {
    case WaitStatus::Allowed:
      return "Allowed";
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
  // Whether the permits were taken, and if not, why.
  WaitStatus status;
  // `Allowed`: the instant the permits were ready (the caller returned at or after it).
  // `DeadlineTooSoon`: the instant they would have been ready. `Cancelled`: when the wait
  // stopped. `ExceedsBurst`: the instant of the call.
  Instant at;

  // Reports whether the permits were taken.
  bool allowed() const noexcept { return status == WaitStatus::Allowed; }
  explicit operator bool() const noexcept { return allowed(); }
};

}  // namespace floodgate
