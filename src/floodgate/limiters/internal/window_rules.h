// The window rules as functions over a state: the fixed window (`FixedWindowLimiter`),
// envoyproxy/ratelimit's fixed window, the sliding-window counter and the sliding-window log
// (`SlidingWindowCounterLimiter`, `SlidingWindowLogLimiter`). The single-key limiters, the keyed
// container and the Redis client decide with this code. Not part of the public API.
//
// Each rule offers what `KeyedLimiter` needs of a rule (gcra_rule.h has the same for GCRA):
// `State`, `Params`, `params(quota)`, `kFull` (the state of a key that has counted nothing),
// `acquire(state, now, cost, params)` returning the decision and the next state, `is_full` and
// `full_from` (when the state decides every later call as `kFull` does, so that a key may be
// dropped), and `window` (how long a key takes to become full). The log's state lives on the heap:
// it also offers `peek` and `release`, and reports its bytes.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate::internal {

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

// The parameters of the rules below but the fixed window: the period and the most permits in it.
struct WindowParams {
  std::int64_t period;
  std::uint64_t limit;
};

inline WindowParams window_params(const Quota& quota) noexcept {
  return {quota.period().count(), quota.count()};
}

// At most `limit` admitted permits in each window [k x period, (k + 1) x period); a denial counts
// nothing. The state packs the window (counted from the earliest one an instant can fall in) and
// its count in one word, the count in the low `count_bits`.
struct FixedWindow {
  using State = std::uint64_t;
  struct Params {
    std::int64_t period;
    std::uint64_t limit;
    unsigned count_bits;
    std::int64_t first_window;  // The window of the earliest instant a limiter accepts.
  };
  struct Step {
    Decision decision;
    State state;
  };

  // Window `first_window`, count 0: empty for every window a call can name.
  static constexpr State kFull = 0;

  static Params params(const Quota& quota) noexcept {
    const std::int64_t period = quota.period().count();
    return {period, quota.count(), static_cast<unsigned>(std::bit_width(quota.count())),
            floor_div(-kTimeLimit, period)};
  }

  // Reports whether every window index fits beside the count (a quota's count <= its period in
  // nanoseconds makes it so).
  static bool fits(const Params& p) noexcept {
    return static_cast<std::uint64_t>(floor_div(kTimeLimit, p.period) - p.first_window) <
           (std::uint64_t{1} << (64 - p.count_bits));
  }

  static Step acquire(State state, Instant now, std::uint64_t cost, const Params& p) noexcept {
    const std::int64_t t = clamped_nanos(now);
    const std::uint64_t mask = (std::uint64_t{1} << p.count_bits) - 1;
    const std::uint64_t seen = state >> p.count_bits;
    // Most calls fall in the window the state holds: a multiplication tells, and only the others
    // pay for a division.
    const std::int64_t seen_start = (static_cast<std::int64_t>(seen) + p.first_window) * p.period;
    // The difference in unsigned arithmetic: t - seen_start can pass INT64_MAX (an instant near
    // the end of the range against the first window), and only [0, period) matters.
    const std::uint64_t offset =
        static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(seen_start) <
                static_cast<std::uint64_t>(p.period)
            ? seen
            : static_cast<std::uint64_t>(floor_div(t, p.period) - p.first_window);
    const std::uint64_t counted = offset == seen ? state & mask : 0;
    // Time from `now` to the start of window `w` (an offset like `offset`), which is later: a
    // stale `t` may be more than 2^63 ns before it.
    const auto until_window = [&](std::uint64_t w) {
      const std::int64_t start = (static_cast<std::int64_t>(w) + p.first_window) * p.period;
      return wait_until(start, t);
    };
    const std::uint64_t limit = p.limit;
    const std::int64_t left = static_cast<std::int64_t>(limit - counted);
    if (offset < seen) {
      // A stale call: its window's count is gone. It may retry in the newest window.
      const std::uint64_t newest = state & mask;
      const bool fits = cost <= limit && newest + cost <= limit;
      return {Decision(cost > limit ? Verdict::ExceedsBurst : Verdict::Denied, limit, 0, 1,
                       cost > limit ? kNever : until_window(fits ? seen : seen + 1),
                       until_window(seen + 1)),
              state};
    }
    const Nanos reset = counted == 0 ? Nanos::zero() : until_window(offset + 1);
    if (cost > limit) [[unlikely]] {
      return {Decision(Verdict::ExceedsBurst, limit, left, 1, kNever, reset), state};
    }
    if (counted + cost > limit) {
      return {Decision(Verdict::Denied, limit, left, 1, until_window(offset + 1), reset), state};
    }
    if (cost == 0) return {Decision(Verdict::Allowed, limit, left, 1, Nanos::zero(), reset), state};
    return {Decision(Verdict::Allowed, limit, left - static_cast<std::int64_t>(cost), 1,
                     Nanos::zero(), until_window(offset + 1)),
            (offset << p.count_bits) | (counted + cost)};
  }

  // An empty window decides as `kFull` from its start on (earlier calls are stale), a counted one
  // from its end.
  static std::int64_t full_from(State state, const Params& p) noexcept {
    const std::uint64_t mask = (std::uint64_t{1} << p.count_bits) - 1;
    const std::int64_t start =
        (static_cast<std::int64_t>(state >> p.count_bits) + p.first_window) * p.period;
    return (state & mask) == 0 ? start : saturating_add(start, p.period);
  }
  static bool is_full(State state, std::int64_t t, const Params& p) noexcept {
    return t >= full_from(state, p);
  }
  static Nanos window(const Params& p) noexcept { return Nanos{p.period}; }
};

// envoyproxy/ratelimit's fixed window: every hit in an aligned window counts, denied ones
// included, and a call is over the limit when the count after its hits passes the limit. A
// call whose window is older than the stored one is denied (that window's count is gone). The
// state names its window by its end, so that it says by itself when it is over.
struct EnvoyFixedWindow {
  struct State {
    std::int64_t end;  // The counted window's end; INT64_MIN: none.
    std::uint64_t count;
  };
  using Params = WindowParams;
  struct Step {
    Decision decision;
    State state;
  };

  // The most hits one call counts: Redis keeps counts as Lua numbers, exact to 2^53.
  static constexpr std::uint64_t kMaxHits = std::uint64_t{1} << 53;
  static constexpr State kFull = {INT64_MIN, 0};
  // `is_full` and `full_from` do not read the parameters.
  static constexpr bool kSelfTimed = true;

  static Params params(const Quota& quota) noexcept { return window_params(quota); }

  // Returns the state of the window that starts at `start` with `count` hits in it.
  static State window_at(std::int64_t start, std::uint64_t count, const Params& p) noexcept {
    return {saturating_add(start, p.period), count};
  }

  static Step acquire(State state, Instant now, std::uint64_t cost, const Params& p) noexcept {
    const std::int64_t t = clamped_nanos(now);
    const std::uint64_t limit = p.limit;
    const std::int64_t end = saturating_add(floor_div(t, p.period) * p.period, p.period);
    if (end < state.end) {
      // Stale: the stored window's count is all there is.
      const std::int64_t start = state.end - p.period;
      const Nanos retry = cost > limit                  ? kNever
                          : state.count + cost <= limit ? wait_until(start, t)
                                                        : wait_until(state.end, t);
      return {Decision(cost > limit ? Verdict::ExceedsBurst : Verdict::Denied, limit, 0, 1, retry,
                       wait_until(state.end, t)),
              state};
    }
    const std::uint64_t before = end == state.end ? state.count : 0;
    const std::uint64_t hits = std::min(cost, kMaxHits);
    const std::uint64_t count = before > UINT64_MAX - hits ? UINT64_MAX : before + hits;
    // Negative past the limit: `Decision::debt()` is how far (envoyproxy/ratelimit's statistics
    // split a call's hits at the limit with it).
    const std::int64_t headroom =
        count >= limit
            ? -static_cast<std::int64_t>(std::min<std::uint64_t>(count - limit, INT64_MAX))
            : static_cast<std::int64_t>(limit - count);
    const Nanos reset = count == 0 ? Nanos::zero() : wait_until(end, t);
    const State next = hits == 0 ? state : State{end, count};
    if (cost > limit) {
      return {Decision(Verdict::ExceedsBurst, limit, headroom, 1, kNever, reset), next};
    }
    if (count > limit) {
      return {Decision(Verdict::Denied, limit, headroom, 1, wait_until(end, t), reset), next};
    }
    return {Decision(Verdict::Allowed, limit, headroom, 1, Nanos::zero(), reset), next};
  }

  static std::int64_t full_from(State state, const Params& /*p*/) noexcept { return state.end; }
  static bool is_full(State state, std::int64_t t, const Params& /*p*/) noexcept {
    return t >= state.end;
  }
  static Nanos window(const Params& p) noexcept { return Nanos{p.period}; }
};

// Cloudflare's sliding-window counter: the current aligned window's count plus the previous
// window's, weighted by how much of the sliding window still overlaps it; a call of cost n is
// admitted iff estimate + n <= limit.
struct SlidingCounter {
  struct State {
    std::int64_t window = INT64_MIN;  // The current window's index; INT64_MIN: none yet.
    std::uint64_t current = 0;
    std::uint64_t previous = 0;  // The count of the window before it.
  };
  using Params = WindowParams;
  struct Step {
    Decision decision;
    State state;
  };

  static constexpr State kFull = {INT64_MIN, 0, 0};
  // What a single-key limiter keeps, and its name.
  using Value = State;
  static constexpr std::string_view kLimiter = "SlidingWindowCounterLimiter";

  static Params params(const Quota& quota) noexcept { return window_params(quota); }

  static Step acquire(State state, Instant now, std::uint64_t cost, const Params& p) noexcept {
    const Decision d = decide(state, clamped_nanos(now), cost, p, /*commit=*/true);
    return {d, state};
  }

  // Decides `cost` at the clamped instant `t`, updating `s` if admitted and `commit`.
  static Decision decide(State& s, std::int64_t t, std::uint64_t cost, const Params& p,
                         bool commit) noexcept {
    const std::int64_t period = p.period;
    const std::uint64_t limit = p.limit;
    const std::int64_t w = floor_div(t, period);
    if (w < s.window) {
      // Stale: answer as the current window's start would, from `t`'s point of view.
      const std::int64_t start = s.window * period;
      return denied_as_of(decide(s, start, cost, p, /*commit=*/false), Nanos{start - t});
    }
    const std::uint64_t current = w == s.window ? s.current : 0;
    const std::uint64_t previous = w == s.window ? s.previous : (w - 1 == s.window ? s.current : 0);
    const std::int64_t into = t - w * period;  // [0, period)
    // previous x (period - into) / period, rounded up so the estimate never undercounts.
    const auto weighted = static_cast<std::uint64_t>(
        (static_cast<Uint128>(previous) * static_cast<std::uint64_t>(period - into) +
         static_cast<std::uint64_t>(period) - 1) /
        static_cast<std::uint64_t>(period));
    const std::uint64_t estimate = weighted + current;
    const auto left = static_cast<std::int64_t>(limit > estimate ? limit - estimate : 0);
    const Nanos to_next{(w + 1) * period - t};
    // Full again once this window's count has aged out: the end of the next window.
    const Nanos reset =
        estimate == 0 ? Nanos::zero() : (current == 0 ? to_next : to_next + Nanos{period});
    if (cost > limit) return Decision(Verdict::ExceedsBurst, limit, left, 1, kNever, reset);
    if (estimate + cost > limit) {
      return Decision(Verdict::Denied, limit, left, 1,
                      retry_after(t, w, previous, current, cost, p), reset);
    }
    if (cost == 0) return Decision(Verdict::Allowed, limit, left, 1, Nanos::zero(), reset);
    if (commit) s = State{w, current + cost, previous};
    return Decision(Verdict::Allowed, limit, left - static_cast<std::int64_t>(cost), 1,
                    Nanos::zero(), to_next + Nanos{period});
  }

  // Every call from the end of the window after the counted one on sees two empty windows.
  static std::int64_t full_from(State s, const Params& p) noexcept {
    if (s.window == INT64_MIN) return INT64_MIN;
    const std::int64_t start = s.window * p.period;
    if (s.current != 0) return saturating_add(saturating_add(start, p.period), p.period);
    return s.previous != 0 ? saturating_add(start, p.period) : start;
  }
  static bool is_full(State s, std::int64_t t, const Params& p) noexcept {
    return t >= full_from(s, p);
  }
  static Nanos window(const Params& p) noexcept {
    return saturating_add(Nanos{p.period}, Nanos{p.period});
  }

 private:
  // Returns the wait until the estimate has room for `cost`: within this window as the previous
  // count's weight falls, else in the next window (where this window's count is the previous).
  static Nanos retry_after(std::int64_t t, std::int64_t w, std::uint64_t previous,
                           std::uint64_t current, std::uint64_t cost, const Params& p) noexcept {
    const std::int64_t period = p.period;
    const std::uint64_t limit = p.limit;
    const auto wide = static_cast<Uint128>(period);
    // Smallest `into` with ceil(previous x (period - into) / period) + current + cost <= limit.
    if (current + cost <= limit && previous > 0) {
      const Uint128 room = limit - current - cost;  // weighted must be <= room
      // previous x (period - into) <= room x period  <=>  into >= period - room x period / previous
      const Uint128 need = wide - (room * wide) / previous;
      const std::int64_t at = w * period + static_cast<std::int64_t>(need);
      if (at < (w + 1) * period) return Nanos{at - t};
    }
    // In window w + 1 the previous count is `current`; its weight falls from current.
    if (cost > limit) return kNever;
    const Uint128 room = limit - cost;
    std::int64_t into_next = 0;
    if (current > room) into_next = static_cast<std::int64_t>(wide - (room * wide) / current);
    return Nanos{(w + 1) * period + into_next - t};
  }
};

// The exact sliding window, kept as a log of admissions: a call of cost n at t is admitted iff
// the cost admitted after t - period, at any instant, plus n stays at most `limit`. The log holds
// the admissions within two periods of the newest one (at most 2 x limit entries).
struct SlidingLog {
  class Log;
  using State = Log*;  // Null: nothing logged. Owned by whoever holds it; see `release`.
  using Params = WindowParams;
  struct Step {
    Decision decision;
    State state;
  };

  static constexpr State kFull = nullptr;

  static Params params(const Quota& quota) noexcept { return window_params(quota); }

  // The admissions of one key, sorted by instant.
  class Log {
   public:
    // Decides `cost` at the clamped instant `t`, recording the admission if `commit`.
    Decision decide(std::int64_t t, std::uint64_t cost, const Params& p, bool commit) {
      const std::int64_t period = p.period;
      const std::uint64_t limit = p.limit;
      if (size() != 0 && t <= newest_ - period) {
        // Too stale: the log no longer holds all of its window. Answer as the newest instant
        // would, from `t`'s point of view.
        return denied_as_of(decide(newest_, cost, p, /*commit=*/false), Nanos{newest_ - t});
      }
      // The cost admitted after t - period, at any instant: every window containing t lies
      // within. The log is sorted by instant, so that is a suffix, found by binary search.
      const auto first =
          std::partition_point(begin(), end(), [&](const Entry& e) { return e.at <= t - period; });
      const std::uint64_t before = through_before(first);
      const std::uint64_t total = size() == 0 ? dropped_ : entries_.back().through;
      const std::uint64_t used = total - before;
      // Full again once the latest admission in the window expires (the log's last entry).
      const Nanos reset = used == 0 ? Nanos::zero() : Nanos{entries_.back().at + period - t};
      const auto left = static_cast<std::int64_t>(limit > used ? limit - used : 0);
      if (cost > limit) return Decision(Verdict::ExceedsBurst, limit, left, 1, kNever, reset);
      if (used + cost > limit) {
        // Wait until enough of the oldest entries in the window have expired: the first entry by
        // which `excess` has been admitted.
        const std::uint64_t excess = used + cost - limit;
        const auto freeing = std::partition_point(
            first, end(), [&](const Entry& e) { return e.through - before < excess; });
        return Decision(Verdict::Denied, limit, left, 1, Nanos{freeing->at + period - t}, reset);
      }
      if (cost == 0) return Decision(Verdict::Allowed, limit, left, 1, Nanos::zero(), reset);
      const std::int64_t latest = size() == 0 ? t : std::max(t, entries_.back().at);
      if (commit) record(t, cost, period);
      return Decision(Verdict::Allowed, limit, left - static_cast<std::int64_t>(cost), 1,
                      Nanos::zero(), Nanos{latest + period - t});
    }

    // Returns the first clamped instant from which the log decides as an empty one: a period
    // after its newest admission.
    std::int64_t full_from(const Params& p) const noexcept {
      return size() == 0 ? INT64_MIN : saturating_add(newest_, p.period);
    }

    // Returns the bytes the log holds on the heap, itself included.
    std::size_t bytes() const noexcept { return sizeof(Log) + entries_.capacity() * sizeof(Entry); }

   private:
    struct Entry {
      std::int64_t at;
      std::uint64_t cost;
      std::uint64_t through;  // The cost of this entry and every earlier one, since the start.
    };
    using Iterator = std::vector<Entry>::iterator;

    Iterator begin() noexcept { return entries_.begin() + static_cast<std::ptrdiff_t>(head_); }
    Iterator end() noexcept { return entries_.end(); }
    std::size_t size() const noexcept { return entries_.size() - head_; }

    // Returns the cost admitted before entry `first`.
    std::uint64_t through_before(Iterator first) noexcept {
      return first == begin() ? dropped_ : std::prev(first)->through;
    }

    // Appends an admission, keeping the log sorted, and drops what no call can need any more
    // (entries at or before newest - 2 x period).
    void record(std::int64_t t, std::uint64_t cost, std::int64_t period) {
      auto it = end();
      while (it != begin() && std::prev(it)->at > t) --it;  // Only a stale call walks back.
      const std::uint64_t before = through_before(it);
      it = entries_.insert(it, Entry{t, cost, before + cost});
      for (++it; it != end(); ++it) it->through += cost;
      newest_ = std::max(newest_, t);
      while (size() != 0 && entries_[head_].at <= newest_ - 2 * period) {
        dropped_ = entries_[head_].through;
        ++head_;
      }
      // Dropped entries are erased once they are half the vector: O(1) amortized.
      if (head_ != 0 && head_ * 2 >= entries_.size()) {
        entries_.erase(entries_.begin(), begin());
        head_ = 0;
        if (entries_.capacity() > 2 * entries_.size() + 8) entries_.shrink_to_fit();
      }
    }

    std::vector<Entry> entries_;  // [head_, end) are the log.
    std::size_t head_ = 0;
    std::uint64_t dropped_ = 0;          // `through` of the last entry dropped.
    std::int64_t newest_ = -kTimeLimit;  // The latest admission's instant.
  };

  // What a single-key limiter keeps, and its name.
  using Value = Log;
  static constexpr std::string_view kLimiter = "SlidingWindowLogLimiter";
  static Decision decide(Log& log, std::int64_t t, std::uint64_t cost, const Params& p,
                         bool commit) {
    return log.decide(t, cost, p, commit);
  }

  static Step acquire(State state, Instant now, std::uint64_t cost, const Params& p) {
    const std::int64_t t = clamped_nanos(now);
    if (state != nullptr) return {state->decide(t, cost, p, /*commit=*/true), state};
    Log empty;
    const Decision d = empty.decide(t, cost, p, /*commit=*/false);
    if (!d.allowed() || cost == 0) return {d, nullptr};
    State made = new Log;
    (void)made->decide(t, cost, p, /*commit=*/true);
    return {d, made};
  }
  static Decision peek(State state, Instant now, std::uint64_t cost, const Params& p) {
    Log empty;
    return (state != nullptr ? *state : empty).decide(clamped_nanos(now), cost, p, false);
  }
  static void release(State& state) noexcept {
    delete state;
    state = nullptr;
  }
  static std::size_t bytes(State state) noexcept { return state == nullptr ? 0 : state->bytes(); }
  static std::int64_t full_from(State state, const Params& p) noexcept {
    return state == nullptr ? INT64_MIN : state->full_from(p);
  }
  static bool is_full(State state, std::int64_t t, const Params& p) noexcept {
    return t >= full_from(state, p);
  }
  static Nanos window(const Params& p) noexcept { return Nanos{p.period}; }
};

}  // namespace floodgate::internal
