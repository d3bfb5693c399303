// `internal::Epochs`: how a lock-free limiter whose whole state is one 64-bit word changes its
// quota while other threads keep calling it, and how its waiters and reservations follow the
// change. Shared by `GcraLimiter` and `TokenBucketLimiter`; not part of the public API.
//
// The problem: a caller reads the state and the quota, computes, and commits with a
// compare-and-swap on the state. If the quota could change in between, a caller that read the
// old quota could still commit (the word may hold the same value after the change), and its
// decision would mix the two quotas. A version number beside the state would stop it, but costs
// every call a second load and a check (a seqlock doubled GCRA's admission time).
//
// The design: each quota gets its own state word, in an epoch. A change seals the old word with
// a value no state ever takes, in the same compare-and-swap that reads the last state under the
// old quota; the new epoch's word was set, just before, to that state carried to the new quota.
// A commit prepared under the old quota then fails on the sealed word, and the caller moves to
// the new epoch. An epoch also has a gate, the burst while it is current and 0 from the moment
// a change starts to seal it: a hot path that checks `cost - 1 >= gate` (which it needs anyway
// for costs 0 and above the burst) is sent to its slow path by a change without a compare of
// its own. Nothing waits for a change: a caller that finds a sealed word follows the old epoch's
// link to the new one, set before the seal.
//
// The price: a sealed epoch must outlive every caller that may still be reading it, and callers
// do not announce themselves (that would cost the hot path a store), so sealed epochs are kept
// until the limiter is destroyed: `sizeof(Epoch)` bytes per change. Setting the same quota again
// is free.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/reservation.h"

namespace floodgate::internal {

// The state word of a sealed epoch: INT64_MAX, above every GCRA state (floodgate/core/time.h
// bounds those below it), and a NaN as a double, which no token-bucket state is.
inline constexpr std::uint64_t kSealedWord = 0x7fff'ffff'ffff'ffff;

// One quota's term: its parameters and the state word under them. The first cache line holds
// what every call reads; the rest is read by changes, waiters and refunds.
template <typename Params>
struct alignas(kCacheLineSize) Epoch {
  Epoch(const Quota& q, std::uint64_t initial) noexcept
      : state(initial), gate(q.burst()), params(Params::from(q)), quota(q) {}

  std::atomic<std::uint64_t> state;  // kSealedWord once the quota has moved on.
  std::atomic<std::uint64_t> gate;   // The burst while current; 0 once a change starts.
  const Params params;
  std::atomic<Epoch*> next{nullptr};  // Set before `state` is sealed.
  const Quota quota;
  // The change that began this epoch (none for the first): from `previous`, at `changed_at`.
  Epoch* previous = nullptr;
  Instant changed_at{};
  OnQuotaChange policy = OnQuotaChange::KeepRemaining;
  std::stop_source retired{std::nostopstate};  // Wakes waiters when sealed; under the mutex.
};

// A limiter's chain of epochs, newest current. Thread-safe: `current`, `successor` and
// `load_live` are lock-free; `change` and `watch` take a mutex that nothing else takes.
template <typename Params>
class Epochs {
 public:
  using Epoch = internal::Epoch<Params>;

  Epochs(const Quota& quota, std::uint64_t initial) noexcept : first_(quota, initial) {}
  Epochs(const Epochs&) = delete;
  Epochs& operator=(const Epochs&) = delete;
  ~Epochs() {
    Epoch* e = current_.load(std::memory_order_relaxed);
    while (e != &first_) delete std::exchange(e, e->previous);
  }

  // Returns the current epoch.
  Epoch& current() const noexcept { return *current_.load(std::memory_order_acquire); }

  // Returns the epoch to move to from `e`, whose state is sealed: the current one, or the next
  // while the change that sealed `e` has yet to publish it (so that no call waits for a
  // change). Out of line, so that callers keep their epoch in a register.
  [[gnu::noinline]] Epoch* successor(const Epoch* e) const noexcept {
    Epoch* c = current_.load(std::memory_order_acquire);
    return c != e ? c : e->next.load(std::memory_order_acquire);
  }

  // Returns the state word of `e`, first moving `e` past sealed epochs.
  std::uint64_t load_live(Epoch*& e) const noexcept {
    std::uint64_t word = e->state.load(std::memory_order_acquire);
    while (word == kSealedWord) [[unlikely]] {
        e = successor(e);
        word = e->state.load(std::memory_order_acquire);
      }
    return word;
  }

  // Applies `step(epoch, word)` to the live state, starting at epoch `e`: `step` returns the
  // word to store and a result, and storing the word it was given commits nothing. Retries from
  // the current value when another call got there first, moving past sealed epochs; returns the
  // result of the step that took effect. Lock-free. (The hot `try_acquire_at`s write this loop
  // out by hand, with the gate in front.)
  template <typename Step>
  auto update(Epoch* e, Step step) const {
    std::uint64_t word = load_live(e);
    while (true) {
      auto [next, result] = step(*e, word);
      if (next == word || commit_word(e->state, word, next)) return result;
      if (word == kSealedWord) word = load_live(e);
    }
  }

  // Makes `quota` current at `now`: the new epoch's state is `carry(word, from, to)` of the
  // old epoch's last state word, where `from` and `to` are the two epochs (`to` already holds
  // the change's instant and policy). Then wakes the old epoch's waiters. Does nothing if the
  // quota is the current one, unless `policy` is `StartFull`.
  template <typename Carry>
  void change(const Quota& quota, Instant now, OnQuotaChange policy, Carry carry) {
    std::stop_source woken{std::nostopstate};
    {
      std::lock_guard<std::mutex> lock(mu_);
      Epoch* old = current_.load(std::memory_order_relaxed);
      if (quota == old->quota && policy != OnQuotaChange::StartFull) return;
      auto fresh = std::make_unique<Epoch>(quota, kSealedWord);
      fresh->previous = old;
      fresh->changed_at = now;
      fresh->policy = policy;
      old->next.store(fresh.get(), std::memory_order_release);
      // Close the gate before sealing: whoever sees the seal sees the gate closed.
      old->gate.store(0, std::memory_order_relaxed);
      std::uint64_t word = old->state.load(std::memory_order_acquire);
      do {
        fresh->state.store(carry(word, *old, *fresh), std::memory_order_relaxed);
      } while (!old->state.compare_exchange_weak(word, kSealedWord, std::memory_order_acq_rel,
                                                 std::memory_order_acquire));
      current_.store(fresh.release(), std::memory_order_release);
      woken = std::exchange(old->retired, std::stop_source{std::nostopstate});
    }
    woken.request_stop();  // Outside the lock: waiters re-read their instants under it.
  }

  // Calls `f(current epoch)` under the mutex, so that no change happens meanwhile, and returns a
  // token that is stopped when that epoch is sealed.
  template <typename F>
  std::stop_token watch(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    Epoch* e = current_.load(std::memory_order_relaxed);
    f(*e);
    if (!e->retired.stop_possible()) e->retired = std::stop_source{};  // Made on first use.
    return e->retired.get_token();
  }

  // Carries a granted reservation's fields from the epoch it was made in through every change
  // up to `to`, with `step(fields, from, to)` for each change.
  template <typename Step>
  static void carry_reservation(ReservationAccess::Fields& f, const Epoch* to, Step step) {
    if (f.verdict != Verdict::Allowed) return;
    for (auto* from = static_cast<const Epoch*>(f.epoch); from != to;) {
      const Epoch* next = from->next.load(std::memory_order_acquire);
      step(f, *from, *next);
      f.epoch = next;
      from = next;
    }
  }

 private:
  // The current epoch. Every call starts here; only `change` writes it.
  std::atomic<Epoch*> current_{&first_};
  // The first epoch, inline so that a limiter that is never reconfigured never allocates.
  // Later epochs link back to it through `previous`.
  Epoch first_;
  // Serializes changes with waiters reading theirs. After `first_`, so that locking it never
  // writes to the lines every call reads.
  std::mutex mu_;
};

// Returns a uniformly random duration in [0, jitter], from a per-thread generator.
inline Nanos random_jitter(Nanos jitter) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> pick(0, jitter.count());
  return Nanos{pick(rng)};
}

// The body of a limiter's blocking `acquire` (see `GcraLimiter::acquire`): reserves with
// `limiter.reserve_at`, then sleeps on `clock` until the reservation is ready, re-reading its
// ready instant whenever the quota changes (`carry(fields, current epoch)` brings it up to
// date), until a stop request cancels it.
template <typename Limiter, SleepingClock C, typename Params, typename Carry>
WaitResult acquire_on(Limiter& limiter, const C& clock, Epochs<Params>& epochs, std::uint64_t cost,
                      Instant deadline, const std::stop_token& stop, Nanos jitter, Carry carry) {
  const Instant now = clock.now();
  if (stop.stop_requested()) return {WaitStatus::Cancelled, now};
  const Nanos budget = deadline <= now ? Nanos::zero()
                                       : Nanos{saturating_sub(deadline.time_since_epoch().count(),
                                                              now.time_since_epoch().count())};
  Reservation r = limiter.reserve_at(now, cost, budget);
  if (r.verdict() == Verdict::ExceedsBurst) return {WaitStatus::ExceedsBurst, now};
  if (!r.ok()) return {WaitStatus::DeadlineTooSoon, r.ready_at()};
  const Nanos spread = jitter > Nanos::zero() ? random_jitter(jitter) : Nanos::zero();
  ReservationAccess::Fields& f = ReservationAccess::fields(r);
  while (true) {
    const std::stop_token changed = epochs.watch([&](auto& e) { carry(f, e); });
    const Instant ready = f.ready_at;
    const Instant jittered{saturating_add(ready.time_since_epoch(), spread)};
    const Instant wake = std::min(jittered, std::max(deadline, ready));
    if (clock.now() >= wake) return {WaitStatus::Admitted, ready};
    std::stop_source either;
    const auto wake_either = [&either] { either.request_stop(); };
    const std::stop_callback on_stop(stop, wake_either);
    const std::stop_callback on_change(changed, wake_either);
    const bool reached = clock.sleep_until(wake, either.get_token());
    // A change that raced with the wake-up still counts: its instant may now lie later.
    if (changed.stop_requested()) continue;  // Carry the reservation over, sleep again.
    if (reached) return {WaitStatus::Admitted, ready};
    const Instant at = clock.now();
    (void)r.cancel_at(at);
    return {WaitStatus::Cancelled, at};
  }
}

}  // namespace floodgate::internal
