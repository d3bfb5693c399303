// Test-only: deliberately broken limiters and a deadline-bounded signal, shared by the kit's own
// tests to prove that its checkers catch real bugs. Not installed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/limiters/internal/gcra_rule.h"

namespace floodgate::testkit {

// A one-shot signal whose wait has a deadline.
class Signal {
 public:
  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      set_ = true;
    }
    cv_.notify_all();
  }
  // Returns whether the signal came within `timeout`.
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

enum class Bug {
  CheckThenAct,        // Loads, decides, then stores: no compare-and-swap.
  DoubleCountOnRetry,  // After a failed compare-and-swap, charges the failed attempt again.
};

// GCRA with a deliberate bug and a preemption point between reading and writing the state.
class BrokenGcra {
 public:
  BrokenGcra(Quota quota, Bug bug) : params_(floodgate::internal::Gcra::params(quota)), bug_(bug) {}

  // Called between the load and the write, on the calling thread.
  std::function<void()> preempt = [] {};

  Decision try_acquire_at(Instant now, std::uint64_t cost) {
    std::int64_t state = state_.load();
    std::int64_t extra = 0;
    while (true) {
      const floodgate::internal::Gcra::Step step =
          floodgate::internal::Gcra::acquire(state + extra, now, cost, params_);
      if (!step.decision.allowed() || cost == 0) return step.decision;
      preempt();
      if (bug_ == Bug::CheckThenAct) {
        state_.store(step.state);
        return step.decision;
      }
      if (state_.compare_exchange_strong(state, step.state)) return step.decision;
      extra += static_cast<std::int64_t>(cost) * params_.interval;  // The bug.
    }
  }

 private:
  floodgate::internal::Gcra::Params params_;
  Bug bug_;
  std::atomic<std::int64_t> state_{floodgate::internal::Gcra::kFull};
};

// x/time/rate's design with its stale-time bug: a stale `now` moves `last` backwards, and the
// next call refills the same interval again.
class StaleRefillBucket {
 public:
  explicit StaleRefillBucket(Quota quota)
      : per_token_ns_(static_cast<double>(quota.period().count()) /
                      static_cast<double>(quota.count())),
        burst_(static_cast<double>(quota.burst())),
        tokens_(burst_) {}

  Decision try_acquire_at(Instant now, std::uint64_t cost) {
    std::lock_guard<std::mutex> lock(mu_);
    const double elapsed = static_cast<double>((now - last_).count());
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) / per_token_ns_);
    last_ = now;  // The bug: moves backwards for a stale `now`.
    const bool ok = tokens_ >= static_cast<double>(cost);
    if (ok) tokens_ -= static_cast<double>(cost);
    return Decision(ok ? Verdict::Allowed : Verdict::Denied, static_cast<std::uint64_t>(burst_), 0,
                    1, Nanos::zero(), Nanos::zero());
  }

 private:
  const double per_token_ns_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  Instant last_{};
};

}  // namespace floodgate::testkit
