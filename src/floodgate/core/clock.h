// Clocks: the `Clock` concept and its models `SteadyClock`, `CoarseClock` and `ManualClock`.
//
// Every limiter takes the time as an argument in its `..._at(Instant now, ...)` form; the forms
// without `_at` read the limiter's clock, a template parameter defaulting to `SteadyClock`.
// Which clock to pick:
//   - `SteadyClock` (the default): `std::chrono::steady_clock`, nanosecond resolution. Reading it
//     can cost more than the limiter's own decision; callers that already hold the time pass it
//     to the `_at` forms.
//   - `CoarseClock`: CLOCK_MONOTONIC_COARSE, cheaper to read, but it advances only once per
//     kernel tick (1 to 4 ms). A limiter on it refills in steps of a tick, so a denied caller may
//     see `retry_after` up to one tick too small. Use it when a millisecond of jitter is fine.
//   - `ManualClock`: time that moves only when told to; for tests, simulations and trace replay.
//     Its `sleep_until` returns when another thread moves the clock far enough.
// `SteadyClock` and `CoarseClock` share one epoch (the machine's boot), so their instants mix.
// All three are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <ctime>  // clock_gettime, CLOCK_MONOTONIC_COARSE (POSIX)
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/time.h"

namespace floodgate {

// A source of `Instant`s. `now()` must be callable concurrently from many threads.
template <typename C>
concept Clock = std::copy_constructible<C> &&  // limiters hold their clock by value
    requires(const C& clock) {
  { clock.now() }
  noexcept->std::same_as<Instant>;  // the current instant
};

// A clock that can also block the calling thread until an instant, with or without a way to
// cancel the wait: what blocking calls such as `LeakyBucketPacer::take` and
// `GcraLimiter::acquire` need.
template <typename C>
concept SleepingClock = Clock<C> && requires(const C& clock, Instant t, std::stop_token stop) {
  clock.sleep_until(t);  // Returns once now() >= t.
  {
    clock.sleep_until(t, stop)
    } -> std::same_as<bool>;  // Returns once now() >= t (true) or
                              // once `stop` is requested (false).
};

namespace internal {

// Blocks until `t` on the steady clock or until `stop` is requested; returns whether `t` came.
inline bool sleep_on_steady_clock(Instant t, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  // Returns false on a stop request, or true once `t` has passed (the predicate never holds).
  cv.wait_until(lock, stop, t, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace internal

// The monotonic system clock, `std::chrono::steady_clock`. Thread-safe.
class SteadyClock {
 public:
  // Returns the current instant.
  Instant now() const noexcept {
    return std::chrono::time_point_cast<Nanos>(std::chrono::steady_clock::now());
  }

  // Blocks the calling thread until `t`.
  void sleep_until(Instant t) const { std::this_thread::sleep_until(t); }

  // Blocks the calling thread until `t` (returns true) or until `stop` is requested (false).
  bool sleep_until(Instant t, std::stop_token stop) const {
    return internal::sleep_on_steady_clock(t, std::move(stop));
  }
};
static_assert(SleepingClock<SteadyClock>);

// The coarse monotonic clock (Linux CLOCK_MONOTONIC_COARSE): cheaper to read than `SteadyClock`,
// same epoch, but it moves in steps of one kernel tick (1 to 4 ms). Thread-safe.
class CoarseClock {
 public:
  // Returns the current instant, truncated to the last kernel tick.
  Instant now() const noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return Instant{Nanos{std::int64_t{ts.tv_sec} * 1'000'000'000 + std::int64_t{ts.tv_nsec}}};
  }

  // Blocks the calling thread until `t` (on the steady clock, which shares the epoch).
  void sleep_until(Instant t) const { std::this_thread::sleep_until(t); }

  // Blocks the calling thread until `t` (returns true) or until `stop` is requested (false).
  bool sleep_until(Instant t, std::stop_token stop) const {
    return internal::sleep_on_steady_clock(t, std::move(stop));
  }
};
static_assert(SleepingClock<CoarseClock>);

// A clock that moves only when told to. Copies share one time: a test keeps a `ManualClock`,
// hands a copy to the limiter, and moves both with `advance` or `set`. Thread-safe: any number of
// threads may read, set and advance it at once.
//
//   floodgate::ManualClock clock;  // starts at Instant{} (the epoch)
//   floodgate::GcraLimiter limiter{floodgate::Quota::per_second(10), clock};
//   clock.advance(std::chrono::milliseconds(100));
class ManualClock {
 public:
  // Starts the clock at `start`.
  explicit ManualClock(Instant start = Instant{})
      : state_(std::make_shared<State>(start.time_since_epoch().count())) {}

  // Returns the current instant.
  Instant now() const noexcept {
    return Instant{Nanos{state_->ns.load(std::memory_order_acquire)}};
  }

  // Moves the clock to `t`, forwards or backwards (to test a clock that jumps back), and wakes
  // the threads in `sleep_until` whose instant has come.
  void set(Instant t) noexcept {
    state_->ns.store(t.time_since_epoch().count(), std::memory_order_release);
    wake();
  }

  // Moves the clock by `d` (which may be negative) and returns the new instant. Saturates at the
  // ends of the `Instant` range instead of wrapping.
  Instant advance(Nanos d) noexcept {
    std::int64_t current = state_->ns.load(std::memory_order_relaxed);
    std::int64_t next = 0;
    do {
      next = internal::saturating_add(current, d.count());
    } while (!state_->ns.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                               std::memory_order_relaxed));
    wake();
    return Instant{Nanos{next}};
  }

  // Blocks the calling thread until another thread moves the clock to `t` or later. In tests,
  // run the sleeper under floodgate::testkit, whose watchdog bounds the wait.
  void sleep_until(Instant t) const { (void)sleep_until(t, std::stop_token{}); }

  // Blocks the calling thread until another thread moves the clock to `t` or later (returns
  // true), or until `stop` is requested (false).
  bool sleep_until(Instant t, std::stop_token stop) const {
    std::unique_lock<std::mutex> lock(state_->mu);
    ++state_->sleepers;
    const bool reached = state_->cv.wait(lock, stop, [&] { return now() >= t; });
    --state_->sleepers;
    return reached;
  }

  // Returns the threads blocked in `sleep_until` now: lets a test wait until a sleeper has gone
  // to sleep before it moves the clock.
  int sleepers() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->sleepers;
  }

 private:
  struct State {
    explicit State(std::int64_t start) : ns(start) {}
    std::atomic<std::int64_t> ns;
    std::mutex mu;  // Orders a wake-up after a sleeper's check: no wake-up is lost.
    std::condition_variable_any cv;  // `_any`: its waits accept a `std::stop_token`.
    int sleepers = 0;                // Guarded by `mu`.
  };

  void wake() const {
    { std::lock_guard<std::mutex> lock(state_->mu); }
    state_->cv.notify_all();
  }

  std::shared_ptr<State> state_;
};
static_assert(SleepingClock<ManualClock>);

}  // namespace floodgate
