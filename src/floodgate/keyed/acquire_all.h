// `acquire_all_at`: one request checked against several limits at once (a global limit and a
// per-client one, say), taking its permits from all of them or from none, and saying which one
// refused and what every one of them says. Header-only; thread-safe as the limiters it is given
// are.
//
//   floodgate::GcraLimiter<> global{floodgate::Quota::per_second(300)};
//   floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_second(100)}};
//   const auto r = floodgate::acquire_all_at(now, 1, global, floodgate::for_key(per_client, ip));
//   if (!r.allowed()) reply_429(r.decision());  // Neither limit was charged.
//   // r.decisions[0] is the global limit's answer, r.decisions[1] the client's, for the headers;
//   // r.refused is the index of the one that refused (`r.refused_by(1)`: the client's).
//
// The limits are taken in the order given. Every limit but the last must be able to give permits
// back (`ReservableLimiter`: `GcraLimiter`, `TokenBucketLimiter`): each is reserved at `now`
// without waiting. The last may be any limit that decides and takes at once (`DecidingLimit`: a
// `KeyedLimiter` bound to a key with `for_key`, a `FixedWindowLimiter`, ...), since nothing after
// it can refuse. If a limit says no, the reservations already made are cancelled at `now`, which
// gives their permits back exactly when no other caller reserved after them, and otherwise as
// much as `Reservation::cancel_at` can without letting anyone in earlier. Passing limits that
// cannot be combined so (a `KeyedLimiter` itself, or a limit without reservations before the
// last) fails at the call, naming `AllOrNoneLimits`.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "floodgate/core/decision.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate {

// A limit that decides and takes at once, and answers without taking (`peek_at`).
template <class L>
concept DecidingLimit = requires(L& limit, const L& view, Instant now, std::uint64_t cost) {
  { limit.try_acquire_at(now, cost) } -> std::same_as<Decision>;
  { view.peek_at(now, cost) } -> std::same_as<Decision>;
};

// A limit whose permits can be reserved and given back: what every limit of `acquire_all_at`
// but the last must be.
template <class L>
concept ReservableLimiter = requires(L& limit, const L& view, Instant now, std::uint64_t cost) {
  { limit.reserve_at(now, cost, Nanos::zero()) } -> std::same_as<Reservation>;
  { view.peek_at(now, cost) } -> std::same_as<Decision>;
};

namespace internal {

template <class... L>
struct AllButLastReservable : std::true_type {};
template <class First, class Second, class... Rest>
struct AllButLastReservable<First, Second, Rest...>
    : std::bool_constant<ReservableLimiter<First> && AllButLastReservable<Second, Rest...>::value> {
};

template <class... L>
using Last = std::tuple_element_t<sizeof...(L) - 1, std::tuple<L...>>;

}  // namespace internal

// Limits `acquire_all_at` can take all or none of: at least one; every one but the last a
// `ReservableLimiter`; the last a `DecidingLimit` or a `ReservableLimiter`.
template <class... L>
concept AllOrNoneLimits = sizeof...(L) >= 1 && internal::AllButLastReservable<L...>::value &&
                          (DecidingLimit<internal::Last<L...>> ||
                           ReservableLimiter<internal::Last<L...>>);

// A keyed limiter's limit for one key, as a `DecidingLimit`: what `for_key` returns. Holds a
// reference to the limiter and a view of the key: use it within the call it is made for.
template <class Keyed>
class KeyLimit {
 public:
  using KeyView = typename Keyed::KeyView;  // What the keyed limiter's lookups take.

  // Holds `keyed` and a view of `key`: both must outlive it.
  KeyLimit(Keyed& keyed, KeyView key) noexcept : keyed_(&keyed), key_(key) {}

  // Takes `cost` from the key's limit at `now`.
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) {
    return keyed_->try_acquire_at(key_, now, cost);
  }
  // Reports what `try_acquire_at(now, cost)` would decide, taking nothing.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const {
    return keyed_->peek_at(key_, now, cost);
  }

 private:
  Keyed* keyed_;
  KeyView key_;
};

// Returns `keyed`'s limit for `key` (`KeyedLimiter`, or any limiter with `try_acquire_at(key,
// now, cost)` and `peek_at(key, now, cost)`), for `acquire_all_at`.
template <class Keyed>
KeyLimit<Keyed> for_key(Keyed& keyed, typename Keyed::KeyView key) noexcept {
  return KeyLimit<Keyed>(keyed, key);
}

// What `acquire_all_at` did, with `N` limits.
template <std::size_t N>
struct [[nodiscard]] AllOrNone {
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);  // `refused` when none did.

  // Every limit's answer, in the order the limits were given, for a reply's headers. The one that
  // refused: its own answer (a reserved limiter's `peek_at(now, cost)`, with the wait a retry
  // needs). Every other: `peek_at(now, 0)` once the outcome is settled (what it has left, the
  // refused request's permits given back). When all admitted, likewise what each has left.
  std::array<Decision, N> decisions;
  // The index of the limit that refused, in the order given; `kNone` when all admitted.
  std::size_t refused = kNone;

  // Reports whether every limit admitted the request (and all were charged).
  bool allowed() const noexcept { return refused == kNone; }
  // `allowed()`.
  explicit operator bool() const noexcept { return allowed(); }

  // Reports whether the limit at `index` (in the order given) refused.
  bool refused_by(std::size_t index) const noexcept { return refused == index; }

  // The answer a reply should lead with: the refusing limit's, or, when all admitted, the one
  // with the fewest permits left (the first of equals).
  const Decision& decision() const noexcept {
    if (refused != kNone) return decisions[refused];
    std::size_t least = 0;
    for (std::size_t i = 1; i < N; ++i) {
      if (decisions[i].remaining() < decisions[least].remaining()) least = i;
    }
    return decisions[least];
  }
};

// Takes `cost` at `now` from every one of `limits`, in order, or from none: see the file comment.
// Limits are taken by reference, `for_key`'s result as a temporary too.
template <class... Limits>
requires AllOrNoneLimits<std::remove_cvref_t<Limits>...> AllOrNone<sizeof...(Limits)>
acquire_all_at(Instant now, std::uint64_t cost, Limits&&... limits) {
  constexpr std::size_t n = sizeof...(Limits);
  constexpr std::size_t kNone = AllOrNone<n>::kNone;
  using Last = std::remove_cvref_t<internal::Last<Limits...>>;
  std::array<Reservation, n> taken;
  std::size_t refused = kNone;
  std::optional<Decision> last_refusal;  // The last limit's own answer, when it refused.
  std::size_t i = 0;
  (
      [&](auto& limit) {
        using L = std::remove_cvref_t<decltype(limit)>;
        const std::size_t at = i++;
        if (refused != kNone) return;
        if constexpr (std::is_same_v<L, Last> && DecidingLimit<L>) {
          if (at == n - 1) {
            // The last decides and takes at once: nothing after it can refuse.
            const Decision d = limit.try_acquire_at(now, cost);
            if (!d.allowed()) {
              refused = at;
              last_refusal = d;
            }
            return;
          }
        }
        if constexpr (ReservableLimiter<L>) {
          taken[at] = limit.reserve_at(now, cost, Nanos::zero());
          if (!taken[at].allowed()) refused = at;
        }
      }(limits),
      ...);
  if (refused != kNone) {
    for (Reservation& r : taken) r.cancel_at(now);
  }
  // Every limit's answer, now that its permits are taken or given back.
  const auto answer = [&](std::size_t at, auto& limit) {
    if (at != refused) return limit.peek_at(now, 0);
    return last_refusal ? *last_refusal : limit.peek_at(now, cost);
  };
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return AllOrNone<n>{.decisions = {answer(I, limits)...}, .refused = refused};
  }
  (std::index_sequence_for<Limits...>{});
}

}  // namespace floodgate
