// `with_rule`: the rule type of an `Algorithm`, for code that chooses the algorithm at run time
// (a flag, a configuration file) and a limiter type at compile time. Plain functions:
// thread-safe.
//
//   floodgate::with_rule(algorithm, [&]<class Rule>(Rule) {
//     run(floodgate::KeyedLimiter<std::string, Rule>{options});
//   });
#pragma once

#include <utility>

#include "floodgate/core/algorithm.h"
#include "floodgate/limiters/bucket_limiter.h"
#include "floodgate/limiters/fixed_window.h"
#include "floodgate/limiters/sliding_window.h"

namespace floodgate {

// Calls `f(Rule{})` with the rule of `algorithm` (`GcraRule`, `TokenBucketRule`, `FixedWindowRule`,
// `SlidingLogRule`, `SlidingCounterRule` or `EnvoyFixedWindowRule`) and returns what it returns.
template <class F>
decltype(auto) with_rule(Algorithm algorithm, F&& f) {
  switch (algorithm) {
    case Algorithm::TokenBucket:
      return std::forward<F>(f)(TokenBucketRule{});
    case Algorithm::FixedWindow:
      return std::forward<F>(f)(FixedWindowRule{});
    case Algorithm::SlidingLog:
      return std::forward<F>(f)(SlidingLogRule{});
    case Algorithm::SlidingCounter:
      return std::forward<F>(f)(SlidingCounterRule{});
    case Algorithm::EnvoyFixedWindow:
      return std::forward<F>(f)(EnvoyFixedWindowRule{});
    case Algorithm::Gcra:
      break;
  }
  return std::forward<F>(f)(GcraRule{});
}

}  // namespace floodgate
