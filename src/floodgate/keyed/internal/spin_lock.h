// The lock a `KeyedLimiter` shard is guarded by. Not part of the public API.
#pragma once

#include <atomic>
#include <thread>

#include "floodgate/limiters/rate_limiter.h"

namespace floodgate::internal {

// A flag that one thread at a time holds.
class SpinFlag {
 public:
  // Takes the flag: an exchange; yields while another thread holds it.
  void lock() noexcept {
    while (held_.exchange(true, std::memory_order_acquire)) {
      while (held_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }
  // Gives it back: a plain store.
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

// Nothing to take: for `Threads::One`, whose callers never overlap.
class NoFlag {
 public:
  void lock() noexcept {}
  void unlock() noexcept {}
};

template <Threads T>
using ShardFlag = std::conditional_t<T == Threads::Many, SpinFlag, NoFlag>;

// Holds `flag` for its scope.
template <class Flag>
class Locked {
 public:
  explicit Locked(Flag& flag) noexcept : flag_(flag) { flag_.lock(); }
  ~Locked() { flag_.unlock(); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  Flag& flag_;
};

}  // namespace floodgate::internal
