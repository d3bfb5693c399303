// The yardstick for floodgate's hot path: the smallest correct lock-free GCRA, one atomic
// arrival time and a compare-and-swap, written as one would inline it by hand. It clamps
// nothing, checks no cost and cannot change its quota; floodgate's limiters are measured as a
// ratio to it in the same binary. Thread-safe. Benchmark use only.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "floodgate/floodgate.h"

namespace floodgate::bench {

class ReferenceGcra {
 public:
  // What a caller needs to answer a request, a 429 included.
  struct Result {
    bool allowed;
    std::uint64_t remaining;
    std::int64_t retry_after_ns;
    std::uint64_t limit;
  };

  explicit ReferenceGcra(const Quota& quota)
      : interval_(quota.interval().count()),
        window_(quota.interval().count() * static_cast<std::int64_t>(quota.burst())),
        burst_(quota.burst()) {}

  Result try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    const std::int64_t t = now.time_since_epoch().count();
    std::int64_t tat = tat_.load(std::memory_order_acquire);
    while (true) {
      const std::int64_t need = std::max(tat, t) - t + static_cast<std::int64_t>(cost) * interval_;
      if (need > window_) {
        const std::int64_t used = std::max(tat - t, std::int64_t{0});
        return {false,
                static_cast<std::uint64_t>(std::max(window_ - used, std::int64_t{0}) / interval_),
                need - window_, burst_};
      }
      if (tat_.compare_exchange_weak(tat, t + need, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        return {true, static_cast<std::uint64_t>((window_ - need) / interval_), 0, burst_};
      }
    }
  }

 private:
  const std::int64_t interval_;
  const std::int64_t window_;
  const std::uint64_t burst_;
  alignas(64) std::atomic<std::int64_t> tat_{INT64_MIN / 2};
};

}  // namespace floodgate::bench
