// `Quota`: how much a limiter admits: `count` permits per `period`, up to `burst` at once.
//
// The burst defaults to the count. Read that twice: `Quota::per_second(100)` admits 100 calls at
// the same instant, then one every 10 ms; it does not spread the 100 over the second. For a
// smooth pace, lower the burst: `Quota::per_second(100).with_burst(1)` admits one call every
// 10 ms and never two closer together.
//
// Limiters work in whole nanoseconds. They charge each permit the emission interval
// `interval() = ceil(period / count)`, rounded up so that a limiter never admits more than its
// quota. The sustained rate is therefore `1 / interval()`, which is lower than `count / period`
// by less than one part in `interval()` nanoseconds: exact when `count` divides `period`, within
// 0.1% for rates up to a million per second, within 50% at the extreme of one permit per
// nanosecond. Bursts are exact: `burst` permits at one instant are always admitted.
//
// Limits, rejected rather than rounded: count, period and burst must be at least 1; the rate at
// most one permit per nanosecond; `burst x interval()` at most 2^61 ns (about 73 years).
//
// `Quota` is an immutable value; thread-safe.
//
//   floodgate::Quota api = floodgate::Quota::per_second(100).with_burst(20);
//   floodgate::Result<floodgate::Quota> from_config = floodgate::Quota::parse("1000/min burst 50");
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"
#include "floodgate/core/time.h"

namespace floodgate {

// A rate and a burst, checked against the limits above when made.
class Quota {
 public:
  // Returns a quota of `count` permits per second, with burst `count`. Aborts if the quota breaks
  // a limit in the file comment (for untrusted numbers, use `Quota::make` or `Quota::parse`).
  static Quota per_second(std::uint64_t count);
  // Returns a quota of `count` permits per minute, with burst `count`. Aborts like `per_second`.
  static Quota per_minute(std::uint64_t count);
  // Returns a quota of `count` permits per hour, with burst `count`. Aborts like `per_second`.
  static Quota per_hour(std::uint64_t count);
  // Returns a quota of `count` permits per `period`, with burst `count`. Aborts like `per_second`.
  static Quota per(Nanos period, std::uint64_t count);

  // Returns this quota with its burst replaced by `burst`. Aborts if that breaks a limit.
  Quota with_burst(std::uint64_t burst) const;

  // Returns the quota `count` per `period` with `burst`, or an error naming the broken limit.
  static Result<Quota> make(Nanos period, std::uint64_t count, std::uint64_t burst);

  // Parses untrusted text: `<count>/<period>[ burst <n>]`, where the period is an optional whole
  // number and a unit (ns, us, ms, s, m or min, h, d), for example "100/s", "5/min",
  // "10/500ms burst 20" or "1000/h burst 1". Returns an error that quotes the text and names the
  // broken rule and value, such as `quota "0/s": rate must be at least 1 per period (got 0)`.
  static Result<Quota> parse(std::string_view text);

  // Returns the number of permits per period.
  std::uint64_t count() const noexcept { return count_; }
  // Returns the period.
  Nanos period() const noexcept { return period_; }
  // Returns the largest number of permits admitted at one instant.
  std::uint64_t burst() const noexcept { return burst_; }
  // Returns the emission interval, `ceil(period / count)`: the time one permit takes to refill.
  Nanos interval() const noexcept { return interval_; }

  // Returns the quota as text that `parse` reads back, such as "100/s burst 20".
  std::string to_string() const;

  // Quotas are equal when their count, period and burst are.
  friend bool operator==(const Quota&, const Quota&) = default;

 private:
  Quota(Nanos period, std::uint64_t count, std::uint64_t burst, Nanos interval)
      : period_(period), count_(count), burst_(burst), interval_(interval) {}

  Nanos period_;
  std::uint64_t count_;
  std::uint64_t burst_;
  Nanos interval_;
};

// What a limiter whose quota changes while it runs (`set_quota_at`) does with the permits already
// used.
enum class OnQuotaChange : std::uint8_t {
  // The permits remaining stay as they were, capped at the new burst; permits owed to
  // reservations granted into the future stay owed and are repaid at the new rate.
  // x/time/rate's `SetLimit` and `SetBurst`; bucket4j's `AS_IS`. The default, and the one policy
  // that never admits more than the larger of the two quotas would.
  KeepRemaining,
  // The fraction of the burst in use stays the same (bucket4j's `PROPORTIONALLY`): half used
  // under the old quota is half used under the new one (debt included), so raising the burst
  // hands out permits.
  KeepProportion,
  // The bucket is refilled to the new burst, less the permits still owed to reservations
  // granted into the future.
  StartFull,
};

// Returns "KeepRemaining", "KeepProportion" or "StartFull".
constexpr std::string_view to_string(OnQuotaChange policy) noexcept {
  switch (policy) {
    case OnQuotaChange::KeepRemaining:
      return "KeepRemaining";
    case OnQuotaChange::KeepProportion:
      return "KeepProportion";
    case OnQuotaChange::StartFull:
      return "StartFull";
  }
  return "?";
}

}  // namespace floodgate
