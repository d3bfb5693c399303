// `ScalableGcraLimiter`: GCRA for one limit that many threads admit on at once. Thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/internal/thread_index.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate {

// How `ScalableGcraLimiter` spreads one limit over threads. The defaults suit most uses.
struct ScalableGcraOptions {
  // Shards, one per thread: the first `shards` threads to use a `ScalableGcraLimiter` (counted
  // among live threads; an exited thread's place goes to the next new one) each lease into a shard
  // of their own, and threads beyond them decide on the shared word, as `GcraLimiter` does. 0:
  // twice the hardware's threads. At most 64.
  std::size_t shards = 0;
  // The most time of the bucket one lease takes from the shared state; 0: the burst's window
  // divided by 4 x shards (so that all leases together hold at most a quarter of the burst),
  // and at least one interval.
  Nanos lease = Nanos::zero();
};

// GCRA (`GcraLimiter`'s rule: `burst` permits at once, then one per `quota.interval()`) for one
// hot limit shared by many threads. `GcraLimiter` admits with a compare-and-swap on one word,
// which moves that word's cache line between cores on every admission; here each thread leases
// a stretch of the bucket's time from the shared word with one compare-and-swap, and admits from
// its lease, on a cache line only it writes, with a plain store until the lease is used up.
// Denials write nothing. Leases are taken only while the bucket is at least half full: nearer
// saturation each admission takes its own time from the shared word, as in `GcraLimiter`, so
// that which calls are admitted stays GCRA's (admissions there are bounded by the rate anyway).
//
// Guarantees:
// - Never more than the quota: for every window [t1, t2] of the callers' instants, the cost
//   admitted at instants in it is at most burst + rate x (t2 - t1), in every interleaving, with
//   stale and out-of-order instants (each permit is admitted at an instant that GCRA's own rule
//   allows for the place in the bucket's time it takes, and no two permits take one place).
// - With one thread, the decisions are exactly `GcraLimiter`'s: a lease that nobody has
//   followed is extended, not replaced.
// - Under-admission is bounded: a call is denied only when neither its thread's lease nor the
//   shared word has room for it, while other threads' leases may still hold unused time, at
//   most `max_stranded()` permits in all. A lease whose time has passed holds nothing.
// - `remaining()` of an admission counts from the thread's lease, so it can be above what the
//   shared word has left; a denial's `retry_after()` is the shared word's (or the lease's, while
//   nobody has taken time after it).
// - Costs: 0 consumes nothing; a cost above the burst is `ExceedsBurst`. Instants are clamped as
//   `GcraLimiter` clamps them.
//
// Not offered: reservations, waits and quota changes (use `GcraLimiter`).
//
//   floodgate::ScalableGcraLimiter limiter{floodgate::Quota::per_second(5'000'000)};
//   if (!limiter.try_acquire()) return shed();  // From any number of threads.
template <Clock C = SteadyClock>
class ScalableGcraLimiter {
  using Impl = internal::Gcra;
  using State = Impl::State;

 public:
  // A full bucket of `quota`, spread as `options` say, on `clock`. A `shards` above 64 is taken
  // as 64; a `lease` is kept between one interval and the burst's window.
  explicit ScalableGcraLimiter(Quota quota, ScalableGcraOptions options = {}, C clock = C{})
      : quota_(quota),
        p_(Impl::params(quota)),
        shard_count_(shard_count(options.shards)),
        lease_(lease_length(options.lease, p_, shard_count_)),
        shards_(std::make_unique<Shard[]>(shard_count_)),
        clock_(std::move(clock)) {}

  ScalableGcraLimiter(const ScalableGcraLimiter&) = delete;
  ScalableGcraLimiter& operator=(const ScalableGcraLimiter&) = delete;

  // Admits `cost` permits at the clock's current instant if they are available.
  Decision try_acquire(std::uint64_t cost = 1) noexcept {
    return try_acquire_at(clock_.now(), cost);
  }

  // Admits `cost` permits at `now` if they are available: `Allowed`, `Denied` (see
  // `retry_after()`) or `ExceedsBurst`.
  // Inlined, so that a caller pays only for the parts of the decision it reads.
  [[gnu::always_inline]] Decision try_acquire_at(Instant now, std::uint64_t cost = 1) noexcept {
    // Out of line: an instant to clamp, a cost of 0 or above the burst (nothing to lease), and a
    // thread without a shard (beyond the count, or yet to take its index). One test: each sets
    // bits above 2 x kTimeLimit.
    const std::int64_t t = now.time_since_epoch().count();
    const std::size_t index = internal::tls_thread_index;
    constexpr std::uint64_t kInRange = 2 * static_cast<std::uint64_t>(internal::kTimeLimit);
    const std::uint64_t rare =
        (static_cast<std::uint64_t>(t) + static_cast<std::uint64_t>(internal::kTimeLimit)) |
        (static_cast<std::uint64_t>((cost - 1 >= p_.burst) || (index >= shard_count_)) << 63);
    if (rare > kInRange) [[unlikely]]
      return try_acquire_slow(now, cost);
    return admit_own(shards_[index], t, cost);
  }

  // Reports what `try_acquire(cost)` would decide at the clock's current instant.
  Decision peek(std::uint64_t cost = 1) const noexcept { return peek_at(clock_.now(), cost); }

  // Reports what `try_acquire_at(now, cost)` would decide for this thread, consuming nothing:
  // from its lease while nobody has taken time after it, else from the shared word, where time
  // held in other threads' leases counts as taken.
  Decision peek_at(Instant now, std::uint64_t cost = 1) const noexcept {
    const State s = state_.load(std::memory_order_acquire);
    State from = s;
    if (const std::size_t index = internal::this_thread_index(); index < shard_count_) {
      const Shard& shard = shards_[index];
      if (s == shard.end.load(std::memory_order_relaxed)) {
        from = shard.cursor.load(std::memory_order_relaxed);
      }
    }
    return Impl::acquire(from, now, cost, p_).decision;
  }

  // Returns the quota.
  const Quota& quota() const noexcept { return quota_; }
  // Returns the clock that the forms without an instant read.
  const C& clock() const noexcept { return clock_; }
  // Returns the number of shards, after the options' 0 and 64 were applied.
  std::size_t shards() const noexcept { return shard_count_; }
  // Returns the length of one lease, after the options' 0 and bounds were applied.
  Nanos lease() const noexcept { return Nanos{lease_}; }

  // Returns the most permits that threads' leases can hold unused while a call is denied:
  // shards x (the lease, rounded up to whole intervals, plus one), and never more than the
  // burst. (A thread beyond the shards sees every lease as taken.)
  std::uint64_t max_stranded() const noexcept {
    const auto interval = static_cast<std::uint64_t>(p_.interval);
    const auto per_lease = (static_cast<std::uint64_t>(lease_) + interval - 1) / interval + 1;
    return std::min<std::uint64_t>(shard_count_ * per_lease, p_.burst);
  }

  // Returns the leases taken from the shared word so far.
  std::uint64_t leases() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      n += shards_[i].leases.load(std::memory_order_relaxed);
    }
    return n;
  }

 private:
  // One thread's lease: the bucket's time in (cursor, end] is its own to admit from. Only the
  // thread whose index is the shard's reads or writes `cursor` and `end` (atomics only so that
  // a later holder of the index, after the first has exited, reads them cleanly).
  struct alignas(2 * internal::kCacheLineSize) Shard {
    std::atomic<State> cursor{Impl::kFull};
    std::atomic<State> end{Impl::kFull};
    std::atomic<std::uint64_t> leases{0};
  };

  static std::size_t shard_count(std::size_t asked) noexcept {
    const std::size_t n =
        asked != 0 ? asked : 2 * std::max(1u, std::thread::hardware_concurrency());
    return std::clamp<std::size_t>(n, 1, 64);
  }

  static std::int64_t lease_length(Nanos asked, const Impl::Params& p, std::size_t shards) {
    const std::int64_t length =
        asked > Nanos::zero() ? asked.count() : p.window / static_cast<std::int64_t>(4 * shards);
    return std::clamp<std::int64_t>(length, p.interval, p.window);
  }

  // Decides `cost` in [1, burst] at the clamped `t` for the thread that owns `shard`.
  [[gnu::always_inline]] Decision admit_own(Shard& shard, std::int64_t t,
                                            std::uint64_t cost) noexcept {
    // No other thread writes the shard, so admitting from the lease is a store.
    const State end = shard.end.load(std::memory_order_relaxed);
    State next = 0;
    Decision decision =
        Impl::admit(shard.cursor.load(std::memory_order_relaxed), t, cost, p_, next);
    if (decision.allowed() && next <= end) [[likely]] {
      shard.cursor.store(next, std::memory_order_relaxed);
      return decision;
    }
    // A denial is decided here, reading only: on the lease while nobody has taken time after it
    // (the decision above), else on the shared word. An admission takes a lease out of line.
    if (const State s = state_.load(std::memory_order_acquire); s != end) {
      decision = Impl::admit(s, t, cost, p_, next);
    }
    if (!decision.allowed()) return decision;
    return lease(shard, t, cost);
  }

  [[gnu::noinline]] Decision try_acquire_slow(Instant now, std::uint64_t cost) noexcept {
    if (cost - 1 >= p_.burst) return peek_at(now, cost);  // 0, or above the burst.
    const std::int64_t t = internal::clamped_nanos(now);
    const std::size_t index = internal::this_thread_index();  // Takes one on first use.
    if (index >= shard_count_) return admit_shared(t, cost);
    return admit_own(shards_[index], t, cost);
  }

  // Decides `cost` at `t` on the shared word alone: for threads beyond the shards.
  [[gnu::noinline]] Decision admit_shared(std::int64_t t, std::uint64_t cost) noexcept {
    State s = state_.load(std::memory_order_acquire);
    for (;;) {
      State next = 0;
      const Decision decision = Impl::admit(s, t, cost, p_, next);
      if (!decision.allowed() || state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                                              std::memory_order_acquire)) {
        return decision;
      }
    }
  }

  // Decides `cost` at `t` for the calling thread's shard, whose lease cannot: on the shared word,
  // or on the lease continued if nobody took time after it. Admitted, it takes the bucket's time
  // up to `lease_` past the shared word (never past `t` + the window) with one
  // compare-and-swap. A denial writes nothing.
  [[gnu::noinline]] Decision lease(Shard& shard, std::int64_t t, std::uint64_t cost) noexcept {
    State s = state_.load(std::memory_order_acquire);
    for (;;) {
      const bool continues = s == shard.end.load(std::memory_order_relaxed);
      State next = 0;
      const Decision decision = Impl::admit(
          continues ? shard.cursor.load(std::memory_order_relaxed) : s, t, cost, p_, next);
      if (!decision.allowed()) return decision;
      // A lease only while the bucket is at least half full: near saturation each admission
      // takes just its own time, so that one thread's lease does not hold what the others'
      // calls at the same instants would have had (the order of admissions stays GCRA's).
      // The window bounds the sums: t <= kTimeLimit and the window <= 2^61.
      const State room = t + p_.window;
      const State from_shared = std::max(s, t);
      const State end = room - from_shared >= p_.window / 2
                            ? std::max(next, std::min(room, from_shared + lease_))
                            : next;
      if (state_.compare_exchange_weak(s, end, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        shard.cursor.store(next, std::memory_order_relaxed);
        shard.end.store(end, std::memory_order_relaxed);
        shard.leases.fetch_add(1, std::memory_order_relaxed);
        return decision;
      }
    }
  }

  const Quota quota_;
  const Impl::Params p_;
  const std::size_t shard_count_;
  const std::int64_t lease_;
  alignas(2 * internal::kCacheLineSize) std::atomic<State> state_{Impl::kFull};
  std::unique_ptr<Shard[]> shards_;
  C clock_;
};

// `ScalableGcraLimiter limiter{quota}` and `limiter{quota, options}` run on the steady clock.
ScalableGcraLimiter(Quota)->ScalableGcraLimiter<>;
ScalableGcraLimiter(Quota, ScalableGcraOptions)->ScalableGcraLimiter<>;

static_assert(RateLimiter<ScalableGcraLimiter<>>);

}  // namespace floodgate
