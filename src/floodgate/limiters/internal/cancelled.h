// What a bucket rule's `cancel` takes and returns, for both rules. Not part of the public API.
#pragma once

#include <cstdint>

#include "floodgate/core/time.h"

namespace floodgate::internal {

// A granted reservation, as cancelling it needs it, in the rule's own state units.
template <class State, class Charge>
struct Cancelled {
  State before;  // The state before it ...
  State after;   // ... and after it.
  Charge charge;
  std::uint64_t cost;
  std::int64_t ready_at;
};

// The state after a cancel, the ready instant of the latest granted call after it (for rules
// that track it; others pass it through), and the refill time given back.
template <class State>
struct CancelStep {
  State state;
  std::int64_t last_event;
  Nanos given;
};

}  // namespace floodgate::internal
