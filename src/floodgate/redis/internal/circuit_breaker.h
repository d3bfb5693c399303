// `CircuitBreaker`: stops calling a server that keeps failing, and probes it now and then. Not
// part of the public API. Thread-safe; while closed, `admit` is one atomic load.
//
// Closed: every call goes through; `failures` consecutive failures open it. Open: calls are
// refused until `open_for` has passed. Then half-open: one call at a time goes through as a
// probe; its success closes the breaker, its failure opens it for another `open_for`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace floodgate::internal {

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  enum class Admit : std::uint8_t { Call, Probe, Refuse };

  CircuitBreaker(std::uint32_t failures, std::chrono::nanoseconds open_for) noexcept
      : threshold_(failures == 0 ? 1 : failures), open_for_(open_for) {}

  // Returns whether a call at `now` may go to the server, and as what.
  Admit admit(TimePoint now) noexcept {
    if (state_.load(std::memory_order_acquire) == kClosed) return Admit::Call;
    const std::lock_guard lock(mu_);
    switch (state_.load(std::memory_order_relaxed)) {
      case kClosed:
        return Admit::Call;
      case kOpen:
        if (now < open_until_) return Admit::Refuse;
        state_.store(kHalfOpen, std::memory_order_release);
        probing_ = true;
        return Admit::Probe;
      default:
        if (probing_) return Admit::Refuse;
        probing_ = true;
        return Admit::Probe;
    }
  }

  // Records the outcome of a call that `admit` let through as `how`.
  void record(bool succeeded, Admit how, TimePoint now) noexcept {
    if (succeeded) {
      failures_.store(0, std::memory_order_relaxed);
      if (state_.load(std::memory_order_acquire) != kClosed) {
        const std::lock_guard lock(mu_);
        state_.store(kClosed, std::memory_order_release);
        probing_ = false;
      }
      return;
    }
    const std::uint32_t failed = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (how != Admit::Probe && failed < threshold_) return;
    const std::lock_guard lock(mu_);
    if (how != Admit::Probe && state_.load(std::memory_order_relaxed) != kClosed) return;
    state_.store(kOpen, std::memory_order_release);
    open_until_ = now + open_for_;
    probing_ = false;
    opens_.fetch_add(1, std::memory_order_relaxed);
  }

  // Returns how many times the breaker has opened.
  std::uint64_t opens() const noexcept { return opens_.load(std::memory_order_relaxed); }

  // Reports whether calls are being refused or probed rather than sent.
  bool is_open() const noexcept { return state_.load(std::memory_order_acquire) != kClosed; }

 private:
  static constexpr int kClosed = 0;
  static constexpr int kOpen = 1;
  static constexpr int kHalfOpen = 2;

  const std::uint32_t threshold_;
  const std::chrono::nanoseconds open_for_;
  std::atomic<int> state_{kClosed};
  std::atomic<std::uint32_t> failures_{0};
  std::atomic<std::uint64_t> opens_{0};
  std::mutex mu_;
  TimePoint open_until_{};  // Guarded by mu_.
  bool probing_ = false;    // Guarded by mu_: a probe is out.
};

}  // namespace floodgate::internal
