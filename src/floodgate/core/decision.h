// `Decision`: a limiter's answer to one request, with the metadata that maps 1:1 onto rate-limit
// response headers (go-redis `redis_rate`'s `Result`, redis-cell's `CL.THROTTLE` reply, the IETF
// RateLimit-* fields).
//
// A denial is a `Decision`, never an error. Producing one costs no allocation and no division:
// `remaining()` divides on demand, so a caller that only asks `allowed()` pays for nothing else.
// `Decision` is an immutable value; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "floodgate/core/time.h"

namespace floodgate {

// The three answers a limiter gives.
enum class Verdict : std::uint8_t {
  Allowed,       // The request was admitted (or, for a peek, would be).
  Denied,        // Not yet: admitted once `retry_after()` has passed, if nothing else takes it.
  ExceedsBurst,  // Never: the cost is larger than the burst, so no amount of waiting admits it.
};

// Returns "Allowed", "Denied" or "ExceedsBurst".
constexpr std::string_view to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::Allowed:
      return "Allowed";
    case Verdict::Denied:
      return "Denied";
    case Verdict::ExceedsBurst:
      return "ExceedsBurst";
  }
  return "?";
}

class [[nodiscard]] Decision {
 public:
  // Builds a decision. `headroom` and `unit` define `remaining()` as `headroom / unit` (the unit
  // is the time one permit takes to refill for time-based limiters, 1 for counters); limiters
  // pass the raw pair so that only callers that ask for `remaining()` pay for the division.
  constexpr Decision(Verdict verdict, std::uint64_t limit, std::int64_t headroom, std::int64_t unit,
                     Nanos retry_after, Nanos reset_after) noexcept
      : limit_(limit),
        headroom_(headroom),
        unit_(unit),
        retry_after_(retry_after),
        reset_after_(reset_after),
        verdict_(verdict) {}

  // Reports whether the request was admitted.
  constexpr bool allowed() const noexcept { return verdict_ == Verdict::Allowed; }
  constexpr explicit operator bool() const noexcept { return allowed(); }

  // Returns `Allowed`, `Denied` (not yet) or `ExceedsBurst` (never).
  constexpr Verdict verdict() const noexcept { return verdict_; }

  // Returns the limit: the burst, the most permits the limiter admits at one instant.
  // (HTTP: RateLimit-Limit.)
  constexpr std::uint64_t limit() const noexcept { return limit_; }

  // Returns the whole permits still available at the decision's instant, after this decision
  // (after consuming its cost when allowed). Zero while the limiter is in debt. (HTTP:
  // RateLimit-Remaining.)
  constexpr std::uint64_t remaining() const noexcept {
    return headroom_ <= 0 ? 0 : static_cast<std::uint64_t>(headroom_ / unit_);
  }

  // Returns how long after the decision's instant the same cost would be admitted, if nothing
  // else consumes in between: zero when allowed, positive when denied, and `kNever`
  // (`Nanos::max()`) for `ExceedsBurst`, which no wait can admit. (HTTP: Retry-After.)
  constexpr Nanos retry_after() const noexcept { return retry_after_; }

  // Returns how long after the decision's instant the limiter is back to its full burst if
  // nothing else consumes: zero when already full. (HTTP: RateLimit-Reset.)
  constexpr Nanos reset_after() const noexcept { return reset_after_; }

  // Reports whether two decisions say the same: the verdict and every reported field.
  friend constexpr bool operator==(const Decision& a, const Decision& b) noexcept {
    return a.verdict_ == b.verdict_ && a.limit_ == b.limit_ && a.remaining() == b.remaining() &&
           a.retry_after_ == b.retry_after_ && a.reset_after_ == b.reset_after_;
  }

 private:
  std::uint64_t limit_;
  std::int64_t headroom_;
  std::int64_t unit_;
  Nanos retry_after_;
  Nanos reset_after_;
  Verdict verdict_;
};

// Returns the decision as one line for logs and test reports, such as
// "Denied(remaining=0, retry_after=50ms, reset_after=1s, limit=10)".
std::string to_string(const Decision& decision);

// The answer to "admit as many as possible, up to n": how many were admitted, and the decision.
// `decision.allowed()` is true when `granted > 0` or when zero permits were asked for.
struct [[nodiscard]] Grant {
  std::uint64_t granted;
  Decision decision;
};

}  // namespace floodgate
