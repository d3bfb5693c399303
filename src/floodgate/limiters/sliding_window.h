// Sliding-window limiters: `SlidingWindowLogLimiter`, exact (at most `limit` in any window of
// length `period`, O(limit) memory), and `SlidingWindowCounterLimiter`, Cloudflare's two-counter
// approximation (O(1) memory, bounded over-admission). Both are thread-safe behind one
// `std::mutex` each; no method allocates on a denial or throws.
//
// Reservations, blocking waits and `set_quota` are not offered. The log could hold future
// entries, but every reservation would then cost memory until its window passed, and a change
// of period would reinterpret entries counted under the old one; the counter's two windows have
// the same problem. Use `retry_after()` to wait, or `GcraLimiter` / `TokenBucketLimiter`, which
// offer all three.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {
namespace internal {
__extension__ using Uint128 = unsigned __int128;  // GCC and Clang: exact 64 x 64-bit products.

// Returns the answer to a stale call, `behind` before the instant that `later` was decided at:
// denied (or never, if the cost exceeds the limit), nothing remaining, and the waits of `later`
// lengthened by `behind`.
inline Decision denied_as_of(const Decision& later, Nanos behind) noexcept {
  const bool never = later.verdict() == Verdict::ExceedsBurst;
  return Decision(
      never ? Verdict::ExceedsBurst : Verdict::Denied, later.limit(), 0, 1,
      never ? kNever : std::min(saturating_add(later.retry_after(), behind), kLongestWait),
      saturating_add(later.reset_after(), behind));
}

// The public side of a limiter whose state sits behind one mutex: the clock, the lock, and the
// `try_acquire`/`peek` family, delegating each decision to `Window::decide(t, cost, commit)`,
// which runs with the lock held. `Window` is built from the quota and names itself in `kName`.
template <typename Window, Clock C>
class LockedWindowLimiter {
 public:
  // Creates a limiter with empty windows. Aborts if the quota's burst differs from its count.
  explicit LockedWindowLimiter(Quota quota, C clock = C{})
      : quota_(quota), window_(checked(quota)), clock_(std::move(clock)) {}

  LockedWindowLimiter(const LockedWindowLimiter&) = delete;
  LockedWindowLimiter& operator=(const LockedWindowLimiter&) = delete;

  // Admits `cost` at the clock's current instant if the window has room.
  Decision try_acquire(std::uint64_t cost = 1) { return try_acquire_at(clock_.now(), cost); }

  // Admits `cost` at `now` if the window has room.
  Decision try_acquire_at(Instant now, std::uint64_t cost = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    return window_.decide(clamped_nanos(now), cost, /*commit=*/true);
  }

  // Reports what `try_acquire(cost)` would decide now, without consuming anything.
  Decision peek(std::uint64_t cost = 1) const { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide, without consuming anything.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const {
    std::lock_guard<std::mutex> lock(mu_);
    return window_.decide(clamped_nanos(now), cost, /*commit=*/false);
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  static const Quota& checked(const Quota& quota) {
    FLOODGATE_CHECK(quota.burst() == quota.count(),
                    std::string(Window::kName) + ": the quota's burst must equal its count");
    return quota;
  }

  const Quota quota_;
  mutable std::mutex mu_;
  mutable Window window_;  // Guarded by mu_.
  [[no_unique_address]] const C clock_;
};

}  // namespace internal

namespace internal {

// The state and rule of `SlidingWindowLogLimiter`. Not thread-safe: the limiter calls it with its
// lock held.
class SlidingLog {
 public:
  static constexpr std::string_view kName = "SlidingWindowLogLimiter";

  explicit SlidingLog(const Quota& quota)
      : period_(quota.period().count()), limit_(quota.count()) {}

 private:
  template <typename, Clock>
  friend class LockedWindowLimiter;

  struct Entry {
    std::int64_t at;
    std::uint64_t cost;
    std::uint64_t through;  // The cost of this entry and every earlier one, since the start.
  };

  // Returns the cost admitted before the first entry later than `after`.
  std::uint64_t through_before(std::deque<Entry>::iterator first) const {
    return first == log_.begin() ? dropped_ : std::prev(first)->through;
  }

  // Decides for `cost` at `t`, and records the admission if `commit`.
  Decision decide(std::int64_t t, std::uint64_t cost, bool commit) {
    if (!log_.empty() && t <= newest_ - period_) {
      // Too stale: the log no longer holds all of its window. Answer as the newest instant would,
      // from `t`'s point of view.
      return internal::denied_as_of(decide(newest_, cost, /*commit=*/false), Nanos{newest_ - t});
    }
    // The cost admitted after t - period, at any instant: every window containing t lies within.
    // The log is sorted by instant, so that is a suffix, found by binary search.
    const auto first = std::partition_point(log_.begin(), log_.end(),
                                            [&](const Entry& e) { return e.at <= t - period_; });
    const std::uint64_t before = through_before(first);
    const std::uint64_t total = log_.empty() ? dropped_ : log_.back().through;
    const std::uint64_t used = total - before;
    // Full again once the latest admission in the window expires (the log's last entry).
    const Nanos reset = used == 0 ? Nanos::zero() : Nanos{log_.back().at + period_ - t};
    const auto left = static_cast<std::int64_t>(limit_ > used ? limit_ - used : 0);
    if (cost > limit_) return Decision(Verdict::ExceedsBurst, limit_, left, 1, kNever, reset);
    if (used + cost > limit_) {
      // Wait until enough of the oldest entries in the window have expired: the first entry by
      // which `excess` has been admitted.
      const std::uint64_t excess = used + cost - limit_;
      const auto freeing = std::partition_point(
          first, log_.end(), [&](const Entry& e) { return e.through - before < excess; });
      return Decision(Verdict::Denied, limit_, left, 1, Nanos{freeing->at + period_ - t}, reset);
    }
    if (cost == 0) return Decision(Verdict::Allowed, limit_, left, 1, Nanos::zero(), reset);
    const std::int64_t latest = log_.empty() ? t : std::max(t, log_.back().at);
    if (commit) record(t, cost);
    return Decision(Verdict::Allowed, limit_, left - static_cast<std::int64_t>(cost), 1,
                    Nanos::zero(), Nanos{latest + period_ - t});
  }

  // Appends an admission, keeping the log sorted, and drops what no call can need
  // any more (entries at or before newest - 2 x period).
  void record(std::int64_t t, std::uint64_t cost) {
    auto it = log_.end();
    while (it != log_.begin() && std::prev(it)->at > t) --it;  // Only a stale call walks back.
    const std::uint64_t before = through_before(it);
    it = log_.insert(it, Entry{t, cost, before + cost});
    for (++it; it != log_.end(); ++it) it->through += cost;
    newest_ = std::max(newest_, t);
    while (!log_.empty() && log_.front().at <= newest_ - 2 * period_) {
      dropped_ = log_.front().through;
      log_.pop_front();
    }
  }

  const std::int64_t period_;
  const std::uint64_t limit_;
  std::deque<Entry> log_;                        // admissions, sorted by instant.
  std::uint64_t dropped_ = 0;                    // `through` of the last entry dropped.
  std::int64_t newest_ = -internal::kTimeLimit;  // the latest admission's instant.
};

}  // namespace internal

// Admits a call of cost n at instant t iff the cost admitted in every window of length `period`
// that contains t stays at most `quota.count()`: the exact sliding window, kept as a log of
// admissions.
//
//   floodgate::SlidingWindowLogLimiter limiter{floodgate::Quota::per_minute(100)};
//
// Semantics:
// - Bound: for every instant s, the cost admitted at instants in [s, s + period) is at most the
//   limit, whatever the order or staleness of the callers' instants: a call is checked against
//   every admission later than t - period, including ones at instants after its own.
// - Stale time: a call more than `period` older than the newest instant seen is denied, since the
//   log no longer holds its window; `retry_after` says when the newest window would take it.
// - Memory: the log holds at most 2 x limit entries (admissions within two periods of the newest
//   instant); an admission of cost n is one entry.
// - Costs: 0 is admitted unless stale; above the limit is `ExceedsBurst`.
//
// Hot-path cost: a mutex and a binary search of the log, O(log limit); an admission appends and
// drops expired entries, O(1) amortized. A stale admission, inserted before later ones, costs
// O(limit).
template <Clock C = SteadyClock>
using SlidingWindowLogLimiter = internal::LockedWindowLimiter<internal::SlidingLog, C>;

namespace internal {

// The state and rule of `SlidingWindowCounterLimiter`. Not thread-safe: the limiter calls it with
// its lock held.
class SlidingCounter {
 public:
  static constexpr std::string_view kName = "SlidingWindowCounterLimiter";

  explicit SlidingCounter(const Quota& quota)
      : period_(quota.period().count()), limit_(quota.count()) {}

 private:
  template <typename, Clock>
  friend class LockedWindowLimiter;

  Decision decide(std::int64_t t, std::uint64_t cost, bool commit) {
    const std::int64_t w = floor_div(t, period_);
    if (w < window_) {
      // Stale: answer as the current window's start would, from `t`'s point of view.
      const std::int64_t start = window_ * period_;
      return internal::denied_as_of(decide(start, cost, /*commit=*/false), Nanos{start - t});
    }
    // The counts as of window w.
    const std::uint64_t current = w == window_ ? current_ : 0;
    const std::uint64_t previous = w == window_ ? previous_ : (w == window_ + 1 ? current_ : 0);
    const std::int64_t into = t - w * period_;  // [0, period)
    // previous x (period - into) / period, rounded up so the estimate never undercounts.
    const auto weighted = static_cast<std::uint64_t>(
        (static_cast<internal::Uint128>(previous) * static_cast<std::uint64_t>(period_ - into) +
         static_cast<std::uint64_t>(period_) - 1) /
        static_cast<std::uint64_t>(period_));
    const std::uint64_t estimate = weighted + current;
    const auto left = static_cast<std::int64_t>(limit_ > estimate ? limit_ - estimate : 0);
    const Nanos to_next{(w + 1) * period_ - t};
    // Full again once this window's count has aged out: the end of the next window.
    const Nanos reset =
        estimate == 0 ? Nanos::zero() : (current == 0 ? to_next : to_next + Nanos{period_});
    if (cost > limit_) return Decision(Verdict::ExceedsBurst, limit_, left, 1, kNever, reset);
    if (estimate + cost > limit_) {
      return Decision(Verdict::Denied, limit_, left, 1, retry_after(t, w, previous, current, cost),
                      reset);
    }
    if (cost == 0) return Decision(Verdict::Allowed, limit_, left, 1, Nanos::zero(), reset);
    if (commit) {
      previous_ = previous;
      current_ = current + cost;
      window_ = w;
    }
    return Decision(Verdict::Allowed, limit_, left - static_cast<std::int64_t>(cost), 1,
                    Nanos::zero(), to_next + Nanos{period_});
  }

  // Returns the wait until the estimate has room for `cost`: within this window as the previous
  // count's weight falls, else in the next window (where this window's count is the previous).
  Nanos retry_after(std::int64_t t, std::int64_t w, std::uint64_t previous, std::uint64_t current,
                    std::uint64_t cost) const {
    const auto p = static_cast<internal::Uint128>(period_);
    // Smallest `into` with ceil(previous x (period - into) / period) + current + cost <= limit.
    if (current + cost <= limit_ && previous > 0) {
      const internal::Uint128 room = limit_ - current - cost;  // weighted must be <= room
      // previous x (period - into) <= room x period  <=>  into >= period - room x period / previous
      const internal::Uint128 need = p - (room * p) / previous;
      const std::int64_t at = w * period_ + static_cast<std::int64_t>(need);
      if (at < (w + 1) * period_) return Nanos{at - t};
    }
    // In window w + 1 the previous count is `current`; its weight falls from current.
    const std::uint64_t prev_next = current;
    if (cost > limit_) return kNever;
    const internal::Uint128 room = limit_ - cost;
    std::int64_t into_next = 0;
    if (prev_next > room) {
      into_next = static_cast<std::int64_t>(p - (room * p) / prev_next);
    }
    return Nanos{(w + 1) * period_ + into_next - t};
  }

  const std::int64_t period_;
  const std::uint64_t limit_;
  // the current window's index, at first the earliest window a call can name.
  std::int64_t window_ = floor_div(-internal::kTimeLimit, period_);
  std::uint64_t current_ = 0;   // its admitted cost.
  std::uint64_t previous_ = 0;  // the window before it.
};

}  // namespace internal

// Cloudflare's sliding-window counter: the count of the current aligned window plus the previous
// window's count weighted by how much of the sliding window still overlaps it,
//   estimate(t) = previous x (1 - (t - window_start) / period) + current,
// and a call of cost n is admitted iff estimate + n <= limit.
//
// Semantics:
// - Per aligned window at most `limit` (the estimate is never below the current count).
// - Over any sliding window of length `period`, at most limit + previous x f < 2 x limit, where f
//   is how far into the current window the sliding window reaches; traffic spread evenly over
//   the previous window admits about the limit. The worst case, every previous admission at the
//   very end of its window, approaches 2 x limit; `SlidingWindowLogLimiter` is exact.
// - Stale time: a call in a window older than the current one is denied, with `retry_after` the
//   wait until the current window would take it.
// - Memory: two counts and a window index.
//
// Each call takes a mutex and divides by the period once.
template <Clock C = SteadyClock>
using SlidingWindowCounterLimiter = internal::LockedWindowLimiter<internal::SlidingCounter, C>;

static_assert(RateLimiter<SlidingWindowLogLimiter<>>);
static_assert(RateLimiter<SlidingWindowCounterLimiter<>>);

}  // namespace floodgate
