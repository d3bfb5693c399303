// `acquire_all_at`: one request checked against several limits at once (a global limit and a
// per-client one, say), taking its permits from all of them or from none. Header-only;
// thread-safe as the limiters it is given are.
//
//   floodgate::GcraLimiter<> global{floodgate::Quota::per_second(300)};
//   floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_second(100)}};
//   const floodgate::AllOrNone r = floodgate::acquire_all_at(
//       now, 1, [&] { return per_client.try_acquire_at(client, now); }, global);
//   if (!r.allowed()) reply_429(r.decision);  // Neither limit was charged.
//
// The limits before the last are limiters with reservations (`GcraLimiter`,
// `TokenBucketLimiter`): each is reserved at `now` without waiting, in order. The last is any
// call that decides and takes (a `KeyedLimiter`'s `try_acquire_at`, which cannot give permits
// back, goes last). If a reservation or the last call says no, the reservations already made are
// cancelled at `now`, which gives their permits back exactly when no other caller reserved after
// them, and otherwise as much as `Reservation::cancel_at` can without letting anyone in earlier.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "floodgate/core/decision.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate {

// What `acquire_all_at` did.
struct [[nodiscard]] AllOrNone {
  // The answer of the limit that refused (its `peek_at(now, cost)` for a reserved limiter), or
  // the last call's when all admitted: what a reply's headers should say.
  Decision decision;
  // The position of the limit that refused among the reserved ones (0, 1, ...), or their count
  // when the last call refused; `kAll` when all admitted.
  std::size_t refused_by;

  static constexpr std::size_t kAll = static_cast<std::size_t>(-1);

  bool allowed() const noexcept { return refused_by == kAll; }
  explicit operator bool() const noexcept { return allowed(); }
};

// Takes `cost` at `now` from each of `reserved` and through `decide_last()`, or from none: see
// the file comment.
template <class DecideLast, class... Reserved>
AllOrNone acquire_all_at(Instant now, std::uint64_t cost, DecideLast&& decide_last,
                         Reserved&... reserved) {
  constexpr std::size_t n = sizeof...(Reserved);
  std::array<Reservation, n> taken;
  std::size_t refused = AllOrNone::kAll;
  std::size_t i = 0;
  // Reserve in order; stop at the first refusal.
  (
      [&](auto& limiter) {
        if (refused != AllOrNone::kAll) return;
        taken[i] = limiter.reserve_at(now, cost, Nanos::zero());
        if (!taken[i].allowed()) refused = i;
        ++i;
      }(reserved),
      ...);
  const auto give_back = [&] {
    for (Reservation& r : taken) r.cancel_at(now);
  };
  if (refused != AllOrNone::kAll) {
    give_back();
    // The refusing limiter's own answer, for the reply.
    std::size_t j = 0;
    std::optional<Decision> why;
    (
        [&](auto& limiter) {
          if (j++ == refused) why = limiter.peek_at(now, cost);
        }(reserved),
        ...);
    return {*why, refused};
  }
  const Decision last = decide_last();
  if (!last.allowed()) {
    give_back();
    return {last, n};
  }
  return {last, AllOrNone::kAll};
}

}  // namespace floodgate
