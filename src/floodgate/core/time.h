// Time vocabulary: `Nanos` and `Instant`.
//
// Public signatures use `std::chrono` only. `Nanos` is a signed 64-bit count of nanoseconds and
// `Instant` is a point on the steady clock's time line in `Nanos`, so any `Clock` in
// floodgate/core/clock.h, and `std::chrono::steady_clock::now()` itself, produce one directly.
//
// Range: limiters accept any `Instant`, but compute on instants clamped to 2^62 - 1 ns (about
// 146 years) either side of the clock's epoch; the steady clock's epoch is the machine's boot.
// Clamping never lets a limiter admit more than its quota. Everything here is thread-safe.
//
//   floodgate::Instant now = floodgate::SteadyClock{}.now();  // or steady_clock::now() itself
//   floodgate::Decision d = limiter.try_acquire_at(now + std::chrono::milliseconds(5));
#pragma once

#include <chrono>
#include <cstdint>

namespace floodgate {

// A signed duration in nanoseconds.
using Nanos = std::chrono::duration<std::int64_t, std::nano>;

// A point in time on the steady clock's time line, in nanoseconds.
using Instant = std::chrono::time_point<std::chrono::steady_clock, Nanos>;

// The longest duration a limiter reports; `Decision::retry_after()` returns it for "never".
inline constexpr Nanos kNever = Nanos::max();

}  // namespace floodgate
