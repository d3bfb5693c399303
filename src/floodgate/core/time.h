// Time vocabulary: `Nanos`, `Instant`, and the saturating integer arithmetic every limiter uses.
//
// Public signatures use `std::chrono` only. `Nanos` is a signed 64-bit count of nanoseconds and
// `Instant` is a point on the steady clock's time line in `Nanos`, so any `Clock` in
// floodgate/core/clock.h, and `std::chrono::steady_clock::now()` itself, produce one directly.
//
// Range: limiters accept any `Instant`, but compute on instants clamped to
// [-kTimeLimit, +kTimeLimit] around the clock's epoch (about +-146 years; the steady clock's
// epoch is the machine's boot). Clamping keeps every sum below INT64_MAX and never lets a limiter
// admit more than its quota (see floodgate/limiters/gcra.h). Everything here is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace floodgate {

// A signed duration in nanoseconds.
using Nanos = std::chrono::duration<std::int64_t, std::nano>;

// A point in time on the steady clock's time line, in nanoseconds.
using Instant = std::chrono::time_point<std::chrono::steady_clock, Nanos>;

// The longest duration a limiter reports; `Decision::retry_after()` returns it for "never".
inline constexpr Nanos kNever = Nanos::max();

namespace internal {

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

// Returns `a / b` rounded towards negative infinity (`b` > 0): the index of the window of length
// `b` that holds `a`.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Returns the nanoseconds of `t` since the epoch, clamped to [-kTimeLimit, kTimeLimit].
constexpr std::int64_t clamped_nanos(Instant t) noexcept {
  const std::int64_t ns = t.time_since_epoch().count();
  // One unsigned comparison tests both ends: ns + kTimeLimit wraps to a huge value below -limit.
  if (static_cast<std::uint64_t>(ns) + std::uint64_t{kTimeLimit} > 2 * std::uint64_t{kTimeLimit})
      [[unlikely]] {
    return ns < 0 ? -kTimeLimit : kTimeLimit;
  }
  return ns;
}

}  // namespace internal
}  // namespace floodgate
