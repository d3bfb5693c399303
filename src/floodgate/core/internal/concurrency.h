// Concurrency constants shared by floodgate's limiters. Not part of the public API.
#pragma once

#include <cstddef>

namespace floodgate::internal {

// The size of a cache line on the platforms floodgate targets; hot atomics are aligned to it so
// that two limiters never share one.
inline constexpr std::size_t kCacheLineSize = 64;

}  // namespace floodgate::internal
