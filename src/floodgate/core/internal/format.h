// Durations as text, for messages and reports. Not part of the public API.
#pragma once

#include <string>

#include "floodgate/core/time.h"

namespace floodgate::internal {

// Returns `d` as text in the largest unit that divides it exactly: "1s", "250ms", "90m", "7ns".
std::string format_duration(Nanos d);

}  // namespace floodgate::internal
