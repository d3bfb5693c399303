// `ConcurrencyLimiter`: at most `limit` operations in flight, each holding an RAII `Permit`
// (Stripe's concurrent-request limiter, Netflix concurrency-limits' fixed limit). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>

#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/concurrency.h"

namespace floodgate {

// Admits an operation while fewer than `limit` are in flight; the returned `Permit` marks it in
// flight until it is destroyed or released.
//
//   floodgate::ConcurrencyLimiter limiter{64};
//   if (auto permit = limiter.try_acquire()) {
//     handle(request);  // At most 64 handlers at once.
//   } else {
//     reply_503();
//   }
//
// `try_acquire` is lock-free (a compare-and-swap on the in-flight count). `acquire_until` waits
// for a permit until a deadline or a stop request, whichever comes first, never without one.
// Waiters are woken one per released permit; there is no fairness guarantee among them.
// `set_limit` changes the limit while operations run (an adaptive controller's knob).
// Reservations are not offered: a permit is not for a later instant but for as long as the
// operation runs, so there is no instant to reserve.
class ConcurrencyLimiter {
 public:
  // Marks one operation in flight until destroyed, released or moved from. Move-only.
  class [[nodiscard]] Permit {
   public:
    // Takes `other`'s permit (this one's is released first); `other` then holds none.
    Permit(Permit&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    // Ends the operation early. Does nothing if already released.
    void release() noexcept {
      if (owner_ != nullptr) std::exchange(owner_, nullptr)->release_one();
    }

   private:
    friend class ConcurrencyLimiter;
    explicit Permit(ConcurrencyLimiter* owner) noexcept : owner_(owner) {}
    ConcurrencyLimiter* owner_;
  };

  // Creates a limiter admitting `limit` operations at once. Aborts if `limit` is 0.
  explicit ConcurrencyLimiter(std::uint64_t limit) : limit_(limit) {
    FLOODGATE_CHECK(limit >= 1, "ConcurrencyLimiter: the limit must be at least 1");
  }

  // Changes the limit while operations run. Raising it wakes waiters for the new slots at
  // once. Lowering it revokes nothing: operations in flight finish, and no new one is admitted
  // until fewer than the new limit are in flight (a call racing with the change may still be
  // admitted under the old limit, as if it had come just before). Aborts if `limit` is 0.
  // Thread-safe.
  void set_limit(std::uint64_t limit) {
    FLOODGATE_CHECK(limit >= 1, "ConcurrencyLimiter::set_limit: the limit must be at least 1");
    limit_.store(limit);
    if (waiters_.load() > 0) {
      // Lock so that a waiter between its check and its wait cannot miss the notification.
      { std::lock_guard<std::mutex> lock(mu_); }
      cv_.notify_all();
    }
  }

  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // Returns a permit if fewer than `limit` operations are in flight, else nothing. Lock-free.
  std::optional<Permit> try_acquire() noexcept {
    if (!reserve()) return std::nullopt;
    return Permit(this);
  }

  // Returns a permit as soon as one is free, or nothing once `deadline` passes or `stop` is
  // requested. A deadline already past makes it a `try_acquire`.
  template <typename Clock, typename Duration>
  std::optional<Permit> acquire_until(std::chrono::time_point<Clock, Duration> deadline,
                                      std::stop_token stop = {}) {
    if (reserve()) return Permit(this);
    std::unique_lock<std::mutex> lock(mu_);
    waiters_.fetch_add(1);
    const bool got = cv_.wait_until(lock, stop, deadline, [this] { return reserve(); });
    waiters_.fetch_sub(1);
    if (!got) return std::nullopt;
    return Permit(this);
  }

  // Returns the operations in flight now.
  std::uint64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_acquire); }

  // Returns the threads waiting in `acquire_until` now.
  std::uint64_t waiting() const noexcept { return waiters_.load(); }

  // Returns the limit.
  std::uint64_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }

 private:
  // Takes one slot if one is free. Sequentially consistent with `release_one`'s check of the
  // waiters: either a waiter sees the freed slot, or the releaser sees the waiter and wakes it.
  bool reserve() noexcept {
    std::uint64_t current = in_flight_.load();
    while (current < limit_.load(std::memory_order_relaxed)) {
      if (in_flight_.compare_exchange_weak(current, current + 1)) return true;
    }
    return false;
  }

  void release_one() noexcept {
    in_flight_.fetch_sub(1);
    if (waiters_.load() > 0) {
      // Lock so that a waiter between its check and its wait cannot miss the notification.
      { std::lock_guard<std::mutex> lock(mu_); }
      cv_.notify_one();
    }
  }

  std::atomic<std::uint64_t> limit_;
  alignas(internal::kCacheLineSize) std::atomic<std::uint64_t> in_flight_{0};
  std::atomic<std::uint64_t> waiters_{0};
  std::mutex mu_;  // Pairs with cv_ for waiters.
  std::condition_variable_any cv_;
};

}  // namespace floodgate
