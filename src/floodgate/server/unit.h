// `Unit`: the units of envoyproxy/ratelimit's limits (and of Envoy's
// `RateLimitResponse.RateLimit.Unit`), their names and lengths. Plain values: thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "floodgate/core/time.h"

namespace floodgate::server {

enum class Unit : std::uint8_t { Second, Minute, Hour, Day, Week, Month, Year };

// Returns "second", ..., "year".
std::string_view to_string(Unit unit) noexcept;

// Returns the unit's length: a month is 30 days and a year 365, as envoyproxy/ratelimit counts.
Nanos length_of(Unit unit) noexcept;

}  // namespace floodgate::server
