#include "floodgate/core/algorithm.h"

#include <string>

#include "floodgate/core/internal/format.h"

namespace floodgate {

std::string_view to_string(Algorithm algorithm) noexcept {
  switch (algorithm) {
    case Algorithm::Gcra:
      return "gcra";
    case Algorithm::TokenBucket:
      return "token-bucket";
    case Algorithm::FixedWindow:
      return "fixed-window";
    case Algorithm::SlidingLog:
      return "sliding-log";
    case Algorithm::SlidingCounter:
      return "sliding-counter";
    case Algorithm::EnvoyFixedWindow:
      return "envoy-fixed-window";
  }
  return "?";
}

Result<Algorithm> parse_algorithm(std::string_view name) {
  for (const Algorithm a : kAlgorithms) {
    if (name == to_string(a)) return a;
  }
  std::string choices;
  for (const Algorithm a : kAlgorithms) {
    choices += choices.empty() ? "" : ", ";
    choices += to_string(a);
  }
  std::string hint;
  // The names `floodgate serve` read before there was one vocabulary.
  if (name == "sliding-window") hint = " (sliding-window is now called sliding-counter)";
  return Error("algorithm " + internal::quoted(name) + ": must be one of " + choices + hint);
}

}  // namespace floodgate
