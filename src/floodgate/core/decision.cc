#include "floodgate/core/decision.h"

#include "floodgate/core/internal/format.h"

namespace floodgate {

std::string to_string(const Decision& decision) {
  const auto wait = [](Nanos d) {
    return d == kNever ? std::string("never") : internal::format_duration(d);
  };
  return std::string(to_string(decision.verdict())) +
         "(remaining=" + std::to_string(decision.remaining()) +
         ", retry_after=" + wait(decision.retry_after()) +
         ", reset_after=" + wait(decision.reset_after()) +
         ", limit=" + std::to_string(decision.limit()) + ")";
}

}  // namespace floodgate
