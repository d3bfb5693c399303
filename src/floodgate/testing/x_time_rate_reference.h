// A transcription of golang.org/x/time/rate's `Limiter` (the mutex-guarded state and the rules of
// `reserveN`, `advance`, `Reservation.CancelAt` and `TokensAt`), for differential tests of
// `TokenBucketLimiter`. Time is int64 nanoseconds (Go's `time.Time` on one monotonic clock).
//
// Go converts between tokens and durations through float64 seconds and truncates durations to
// whole nanoseconds. Here the rate is 2^-k tokens per nanosecond, so that a token is exactly
// 2^k ns and every conversion is exact in binary floating point: Go's formulas then give these
// very values, and a comparison sees the rules rather than rounding.
//
// One rule is floodgate's where the two differ, and marked so: x/time/rate can give back more
// tokens than a cancelled reservation took (when cancelling the latest reservation moved
// `lastEvent` before an earlier one's ready instant, "the tokens reserved after it" come out
// negative); floodgate gives back at most the reservation's own. `capped_restores()` counts the
// cancels where that made a difference.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace floodgate::x_time_rate {

// A `Reservation`: whether it was granted, how many tokens, and when they may be used.
struct Reservation {
  bool ok = false;
  std::int64_t tokens = 0;
  std::int64_t time_to_act = 0;
};

class Limiter {
 public:
  // A limiter of `burst` tokens refilled at one token per `ns_per_token` nanoseconds (a power of
  // two), full before its first call.
  Limiter(std::int64_t ns_per_token, std::int64_t burst)
      : ns_per_token_(ns_per_token), burst_(burst), tokens_(static_cast<double>(burst)) {}

  // `AllowN(now, n)`.
  bool allow(std::int64_t now, std::int64_t n) { return reserve(now, n, 0).ok; }

  // `reserveN(now, n, maxFutureReserve)`: `ReserveN` with no limit, `WaitN`'s decision with the
  // context's deadline minus `now`.
  Reservation reserve(std::int64_t now, std::int64_t n, std::int64_t max_future_reserve) {
    const Advanced a = advance(now);
    double tokens = a.tokens - static_cast<double>(n);
    std::int64_t wait = 0;
    if (tokens < 0) wait = duration_from_tokens(-tokens);
    const bool ok = n <= burst_ && wait <= max_future_reserve;
    Reservation r;
    r.ok = ok;
    if (ok) {
      r.tokens = n;
      r.time_to_act = a.now + wait;
      last_ = a.now;
      tokens_ = tokens;
      last_event_ = r.time_to_act;
    } else {
      last_ = a.last;
    }
    return r;
  }

  // `Reservation.CancelAt(now)`.
  void cancel(const Reservation& r, std::int64_t now) {
    if (!r.ok || r.tokens == 0 || r.time_to_act < now) return;
    // The tokens reserved after r should not be restored.
    double restore =
        static_cast<double>(r.tokens) - tokens_from_duration(last_event_ - r.time_to_act);
    if (restore <= 0) return;
    if (restore > static_cast<double>(r.tokens)) {  // floodgate's rule, not x/time/rate's.
      restore = static_cast<double>(r.tokens);
      ++capped_restores_;
    }
    const Advanced a = advance(now);
    double tokens = a.tokens + restore;
    if (tokens > static_cast<double>(burst_)) tokens = static_cast<double>(burst_);
    last_ = a.now;
    tokens_ = tokens;
    if (r.time_to_act == last_event_) {
      const std::int64_t previous =
          r.time_to_act + duration_from_tokens(-static_cast<double>(r.tokens));
      if (previous >= a.now) last_event_ = previous;
    }
  }

  // `TokensAt(now)`.
  double tokens_at(std::int64_t now) const { return advance(now).tokens; }

  // Returns how many cancels gave back less than x/time/rate would (see the file comment).
  std::uint64_t capped_restores() const noexcept { return capped_restores_; }

 private:
  struct Advanced {
    std::int64_t now;
    std::int64_t last;
    double tokens;
  };

  // `advance(now)`: the state the passage of time gives, without changing the limiter.
  Advanced advance(std::int64_t now) const {
    if (now < last_) return {last_, last_, tokens_};
    // Avoid overflow when last is very old (Go's zero time: before the first call).
    const std::int64_t max_elapsed = duration_from_tokens(static_cast<double>(burst_) - tokens_);
    const std::int64_t elapsed =
        last_ == kZeroTime ? max_elapsed : std::min(now - last_, max_elapsed);
    double tokens = tokens_ + tokens_from_duration(elapsed);
    if (tokens > static_cast<double>(burst_)) tokens = static_cast<double>(burst_);
    return {now, last_, tokens};
  }

  // Go: time.Duration(1e9 * tokens / limit), truncated towards zero.
  std::int64_t duration_from_tokens(double tokens) const {
    return static_cast<std::int64_t>(tokens * static_cast<double>(ns_per_token_));
  }
  // Go: seconds x limit, split into whole and fractional seconds.
  double tokens_from_duration(std::int64_t d) const {
    return static_cast<double>(d) / static_cast<double>(ns_per_token_);
  }

  static constexpr std::int64_t kZeroTime = std::numeric_limits<std::int64_t>::min();

  std::int64_t ns_per_token_;
  std::int64_t burst_;
  double tokens_;
  std::int64_t last_ = kZeroTime;        // When `tokens_` was last updated.
  std::int64_t last_event_ = kZeroTime;  // The latest granted call's time to act.
  std::uint64_t capped_restores_ = 0;
};

}  // namespace floodgate::x_time_rate
