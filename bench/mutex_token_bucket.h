// The in-tree baseline the benchmarks compare against: a token bucket behind a `std::mutex`, with
// `double` tokens and the time of the last update, the design of golang.org/x/time/rate.
// Thread-safe. Benchmark use only: it has x/time/rate's known weaknesses (floating-point drift,
// and a stale `now` moves `last_` backwards and mints tokens).
#pragma once

#include <mutex>

#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate::bench {

class MutexTokenBucket {
 public:
  explicit MutexTokenBucket(const Quota& quota)
      : rate_per_ns_(static_cast<double>(quota.count()) /
                     static_cast<double>(quota.period().count())),
        burst_(static_cast<double>(quota.burst())),
        tokens_(burst_) {}

  // Takes `cost` tokens at `now` if there are enough; x/time/rate's AllowN(now, cost).
  bool try_acquire_at(Instant now, double cost = 1.0) {
    std::lock_guard<std::mutex> lock(mu_);
    // x/time/rate's advance(): refill for the time since `last_`, capped at the burst.
    const double elapsed = static_cast<double>((now - last_).count());
    double tokens = tokens_ + (elapsed > 0 ? elapsed * rate_per_ns_ : 0.0);
    if (tokens > burst_) tokens = burst_;
    last_ = now;
    if (tokens < cost) {
      tokens_ = tokens;
      return false;
    }
    tokens_ = tokens - cost;
    return true;
  }

 private:
  const double rate_per_ns_;
  const double burst_;
  std::mutex mu_;
  double tokens_;   // Guarded by mu_.
  Instant last_{};  // Guarded by mu_.
};

}  // namespace floodgate::bench
