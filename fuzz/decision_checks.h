// The invariants every `Decision` keeps, whatever the limiter and its input.
#pragma once

#include <string>

#include "floodgate/core/decision.h"
#include "fuzz_input.h"

namespace floodgate::fuzz {

// Fails the run if `d` breaks the `Decision` contract: no wait when allowed; a positive, finite
// wait when denied; `kNever` when the cost can never pass; a positive wait, or `kNever`, when a
// keyed limiter has no room.
inline void check_decision(const Decision& d, const char* where) {
  const Nanos wait = d.retry_after();
  switch (d.verdict()) {
    case Verdict::Allowed:
      if (wait != Nanos::zero()) fail(where, "allowed with a wait: " + to_string(d));
      break;
    case Verdict::Denied:
      if (wait <= Nanos::zero() || wait == kNever) {
        fail(where, "denied without a positive, finite wait: " + to_string(d));
      }
      break;
    case Verdict::TooManyKeys:
      if (wait <= Nanos::zero()) fail(where, "no room, without a positive wait: " + to_string(d));
      break;
    case Verdict::ExceedsBurst:
      if (wait != kNever) fail(where, "exceeds the burst with a finite wait: " + to_string(d));
      break;
  }
  if (d.reset_after() < Nanos::zero()) fail(where, "a negative reset: " + to_string(d));
}

}  // namespace floodgate::fuzz
