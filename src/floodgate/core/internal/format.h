// Durations, quoted text and counts as text, for messages and reports. Not part of the public
// API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "floodgate/core/time.h"

namespace floodgate::internal {

// Returns `d` as text in the largest unit that divides it exactly: "1s", "250ms", "90m", "7ns".
std::string format_duration(Nanos d);

// Returns `text` in double quotes for a message: at most `max_bytes` bytes of it (then "..."),
// every byte that is not printable ASCII, and `"` and `\`, as \xNN. A message built with it
// survives a terminal, a log line and a C string (a NUL byte cannot cut it short).
std::string quoted(std::string_view text, std::size_t max_bytes = 60);

// Returns `n` with commas between thousands: "1,234,567".
std::string with_commas(std::uint64_t n);

// Returns `part` of `whole` as a percentage with one decimal, "25.5%" ("0.0%" when `whole` is 0).
std::string percent(std::uint64_t part, std::uint64_t whole);

// The `max_bytes` for a file name or an address: longer than any a system takes (PATH_MAX is
// 4096), so that they are shown whole, while a hostile megabyte is still cut.
inline constexpr std::size_t kNameBytes = 8192;

}  // namespace floodgate::internal
