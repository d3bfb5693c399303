// Saturating integer arithmetic on nanoseconds and the clamp every limiter applies to instants.
// Not part of the public API; floodgate/core/time.h states the range users see.
#pragma once

#include <cstdint>
#include <limits>

#include "floodgate/core/time.h"

namespace floodgate::internal {

// Limiters clamp instants to [-kTimeLimit, kTimeLimit] nanoseconds from the epoch (~146 years).
inline constexpr std::int64_t kTimeLimit = (std::int64_t{1} << 62) - 1;

// The largest window (burst x interval) a quota may span: 2^61 ns, about 73 years. Together with
// kTimeLimit this bounds every intermediate sum in the limiters below INT64_MAX.
inline constexpr std::int64_t kMaxWindow = std::int64_t{1} << 61;

// Returns `a + b`, saturated to the int64 range.
constexpr std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return sum;
}

// Returns `a + b`, saturated to the `Nanos` range.
constexpr Nanos saturating_add(Nanos a, Nanos b) noexcept {
  return Nanos{saturating_add(a.count(), b.count())};
}

// Returns `a - b`, saturated to the int64 range.
constexpr std::int64_t saturating_sub(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) {
    return b < 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return difference;
}

// Returns `a * b`, saturated to the int64 range.
constexpr std::int64_t saturating_mul(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return (a < 0) != (b < 0) ? std::numeric_limits<std::int64_t>::min()
                              : std::numeric_limits<std::int64_t>::max();
  }
  return product;
}

// Returns an unsigned nanosecond count as `Nanos`, saturated at `Nanos::max()`.
constexpr Nanos saturating_nanos(std::uint64_t ns) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return Nanos{ns > kMax ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(ns)};
}

// The longest wait a denial reports. Between instants at the two ends of the clamp range a wait
// can exceed the int64 range (about 292 years); it is reported as this, one nanosecond short of
// `kNever`, so that `kNever` keeps meaning "no wait is enough" (a cost above the burst).
inline constexpr Nanos kLongestWait{std::numeric_limits<std::int64_t>::max() - 1};

// Returns an unsigned wait in nanoseconds as `Nanos`, at most `kLongestWait`.
constexpr Nanos wait_nanos(std::uint64_t ns) noexcept {
  return ns >= static_cast<std::uint64_t>(kLongestWait.count())
             ? kLongestWait
             : Nanos{static_cast<std::int64_t>(ns)};
}

// Returns the wait from the instant `t` until the instant `until` (both in nanoseconds): at least
// 1 ns, at most `kLongestWait`, whatever the two are.
constexpr Nanos wait_until(std::int64_t until, std::int64_t t) noexcept {
  if (until <= t) return Nanos{1};
  return wait_nanos(static_cast<std::uint64_t>(until) - static_cast<std::uint64_t>(t));
}

// Returns `a / b` rounded towards negative infinity (`b` > 0): the index of the window of length
// `b` that holds `a`.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Reports whether `ns` lies in [-kTimeLimit, kTimeLimit]. One unsigned comparison tests both
// ends: ns + kTimeLimit wraps to a huge value below -kTimeLimit.
constexpr bool in_time_range(std::int64_t ns) noexcept {
  return static_cast<std::uint64_t>(ns) + std::uint64_t{kTimeLimit} <=
         2 * std::uint64_t{kTimeLimit};
}

// Returns the nanoseconds of `t` since the epoch, clamped to [-kTimeLimit, kTimeLimit].
constexpr std::int64_t clamped_nanos(Instant t) noexcept {
  const std::int64_t ns = t.time_since_epoch().count();
  if (!in_time_range(ns)) [[unlikely]]
    return ns < 0 ? -kTimeLimit : kTimeLimit;
  return ns;
}

}  // namespace floodgate::internal
