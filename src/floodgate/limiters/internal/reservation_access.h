// How bucket limiters build and read `Reservation`s. Not part of the public API.
#pragma once

#include "floodgate/limiters/reservation.h"

namespace floodgate::internal {

struct ReservationAccess {
  using Fields = Reservation::Fields;
  using Cancel = Reservation::Cancel;

  static const Fields& fields(const Reservation& r) noexcept { return r.f_; }

  static Reservation make(const Fields& f, void* owner, Cancel cancel) noexcept {
    Reservation r;
    r.f_ = f;
    r.owner_ = owner;
    r.cancel_ = cancel;
    return r;
  }
};

}  // namespace floodgate::internal
