// `Decision`: a limiter's answer to one request, with what a reply needs: whether it was
// admitted, how many permits remain, when to retry and when the limiter is full again (the fields
// of go-redis `redis_rate`'s `Result` and redis-cell's `CL.THROTTLE` reply).
//
// A denial is a `Decision`, never an error. `Decision` is an immutable value; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "floodgate/core/time.h"

namespace floodgate {

// The answers a limiter gives.
enum class Verdict : std::uint8_t {
  Allowed,       // Admitted (or, for a peek, would be).
  Denied,        // Not yet: admitted once `retry_after()` has passed, if nothing else takes it.
  ExceedsBurst,  // Never: the cost is larger than the burst, so no amount of waiting admits it.
  TooManyKeys,   // Not yet: a `KeyedLimiter` has no room to track this key; room is expected
                 // after `retry_after()` (`OverflowPolicy::RejectNewKeys`), or never (`kNever`)
                 // while no key in its shard can be dropped. Not the key's quota.
};

// Returns "Allowed", "Denied", "ExceedsBurst" or "TooManyKeys".
constexpr std::string_view to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::Allowed:
      return "Allowed";
    case Verdict::Denied:
      return "Denied";
    case Verdict::ExceedsBurst:
      return "ExceedsBurst";
    case Verdict::TooManyKeys:
      return "TooManyKeys";
  }
  return "?";
}

// One decision and its metadata, all measured from the instant it was made at.
//
//   floodgate::Decision d = limiter.try_acquire_at(now);
//   if (!d.allowed()) reply_429(d.retry_after());
class [[nodiscard]] Decision {
 public:
  // Builds a decision: `remaining()` is `headroom / unit` (limiters pass the raw pair so that
  // only callers that ask for `remaining()` pay for the division).
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

  // Returns why: `Allowed`, `Denied` (not yet), `ExceedsBurst` (never) or `TooManyKeys`.
  constexpr Verdict verdict() const noexcept { return verdict_; }

  // Returns the burst: the most permits the limiter admits at one instant. (It is not the count
  // per period; for a header that advertises the quota, use the limiter's `quota()`.)
  constexpr std::uint64_t limit() const noexcept { return limit_; }

  // Returns the whole permits available after this decision (after its cost, when admitted);
  // zero while the limiter is in debt.
  constexpr std::uint64_t remaining() const noexcept {
    return headroom_ <= 0
               ? 0
               : static_cast<std::uint64_t>(headroom_) / static_cast<std::uint64_t>(unit_);
  }

  // Returns the whole permits the limiter is past empty after this decision, rounded up: for
  // Envoy's fixed window (`EnvoyFixedWindowRule`), which counts the hits it denies, how far its
  // count is past the limit; for a bucket lent ahead, what it owes. Zero when it is not past
  // empty, which is always for the limiters that count only what they admit.
  constexpr std::uint64_t debt() const noexcept {
    if (headroom_ >= 0) return 0;
    const auto owed = static_cast<std::uint64_t>(-(headroom_ + 1)) + 1;  // -INT64_MIN fits.
    const auto unit = static_cast<std::uint64_t>(unit_);
    return owed / unit + (owed % unit != 0 ? 1 : 0);
  }
  // Returns how long until the same cost would be admitted, if nothing else consumes in between:
  // zero when admitted, positive otherwise, and `kNever` (`Nanos::max()`) only for
  // `ExceedsBurst` and a `TooManyKeys` that no wait alone can end. A wait longer than the int64
  // range (only between instants at the two ends of the clamp range) is reported as `Nanos::max() -
  // 1ns`. Round it up when converting to whole seconds, and test for `kNever` first: it overflows
  // any arithmetic that adds to it.
  constexpr Nanos retry_after() const noexcept { return retry_after_; }

  // Returns how long until the limiter is back to its full burst if nothing else consumes: zero
  // when it is full.
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

// The answer to "take as many permits as are available, up to n" (`try_acquire_up_to_at`).
struct [[nodiscard]] Grant {
  std::uint64_t permits;  // The permits taken: from 0 to n.
  Decision decision;      // For `permits` (or for one permit, when none was available).

  // Reports whether any permit was taken, or none was asked for.
  constexpr bool allowed() const noexcept { return decision.allowed(); }
};

}  // namespace floodgate
