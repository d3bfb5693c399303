// Dense indices for live threads, for structures with a slot per thread that only that thread
// writes (`ScalableGcraLimiter`'s shards). Not part of the public API. Thread-safe.
#pragma once

#include <cstddef>
#include <limits>

namespace floodgate::internal {

// What a thread holds before it asks for an index, and while it exits: larger than any count of
// slots, so a thread holding either uses none.
inline constexpr std::size_t kUnclaimedThreadIndex = std::numeric_limits<std::size_t>::max();
inline constexpr std::size_t kExitingThreadIndex = kUnclaimedThreadIndex - 1;

// Takes the lowest index that no live thread holds, for the calling thread until it exits, and
// returns it (or `kExitingThreadIndex` once the thread's exit has begun).
std::size_t claim_thread_index();

// The calling thread's index, constant-initialized so that reading it is one load.
inline constinit thread_local std::size_t tls_thread_index = kUnclaimedThreadIndex;

// Returns the calling thread's index: 0, 1, 2, ... dense among the live threads that have asked,
// the same for the thread's whole life. No two live threads hold the same index.
inline std::size_t this_thread_index() noexcept {
  const std::size_t index = tls_thread_index;
  if (index == kUnclaimedThreadIndex) [[unlikely]]
    return claim_thread_index();
  return index;
}

}  // namespace floodgate::internal
