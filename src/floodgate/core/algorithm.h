// `Algorithm`: the names of floodgate's rate-limiting rules, one vocabulary for the library, the
// `floodgate` command (replay, stress, bench), `floodgate serve`'s configuration and Redis.
// Plain values: thread-safe.
//
//   floodgate::Result<floodgate::Algorithm> a = floodgate::parse_algorithm("sliding-log");
//   if (!a) return fail(a.error());
//
// `limiters/rules.h` turns an `Algorithm` into the rule type that `KeyedLimiter` and the
// single-key limiters take.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "floodgate/core/result.h"

namespace floodgate {

// One of floodgate's rules; `to_string` and `parse_algorithm` convert it to and from text.
enum class Algorithm : std::uint8_t {
  // GCRA (`GcraLimiter`): a token bucket of `burst` permits kept as one arrival time; exact.
  Gcra,
  // x/time/rate's real-valued token bucket (`TokenBucketLimiter`).
  TokenBucket,
  // At most `count` admitted permits per aligned window (`FixedWindowLimiter`); a denied call
  // counts nothing.
  FixedWindow,
  // At most `count` in every sliding window of one period, kept as a log of admissions
  // (`SlidingWindowLogLimiter`); exact, O(count) memory per key.
  SlidingLog,
  // Cloudflare's two-counter estimate of the sliding window (`SlidingWindowCounterLimiter`).
  SlidingCounter,
  // envoyproxy/ratelimit's fixed window: every hit counts, denied ones included, so a client that
  // keeps retrying stays over the limit until the aligned window ends. `floodgate serve`'s default.
  EnvoyFixedWindow,
};

// Every algorithm, in the order above.
inline constexpr std::array<Algorithm, 6> kAlgorithms = {
    Algorithm::Gcra,       Algorithm::TokenBucket,    Algorithm::FixedWindow,
    Algorithm::SlidingLog, Algorithm::SlidingCounter, Algorithm::EnvoyFixedWindow};

// Returns "gcra", "token-bucket", "fixed-window", "sliding-log", "sliding-counter" or
// "envoy-fixed-window": the name `parse_algorithm` reads.
std::string_view to_string(Algorithm algorithm) noexcept;

// Returns the algorithm named `name`, or an error naming it and the choices.
Result<Algorithm> parse_algorithm(std::string_view name);

// Reports whether the algorithm has a burst of its own (GCRA and the token bucket). The window
// algorithms admit `count` per window: their quota's burst must equal its count.
constexpr bool has_burst(Algorithm algorithm) noexcept {
  return algorithm == Algorithm::Gcra || algorithm == Algorithm::TokenBucket;
}

}  // namespace floodgate
