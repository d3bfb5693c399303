// `BucketCell`: a bucket limiter's state word and quota, and how a change of quota is made
// while other threads keep deciding. Not part of the public API; docs/design.md has the design
// and the argument for it.
//
// For `Threads::Many` the quota's parameters sit beside the state word under a sequence lock: a
// change counts itself started, writes the new parameters, carries the state word to the new
// quota with a compare-and-swap, and counts itself finished, all under a mutex that only changes
// take. A call reads the finished count, the parameters and the state, then the started count,
// and uses what it read only if the two counts are equal (no change ran meanwhile); it then
// commits with a compare-and-swap on the state word alone. A call that overlaps a change is
// therefore decided wholly under the old parameters or wholly under the new ones. Because the
// commit checks the state word only, a call decided under the old quota can still commit after a
// change that left the word as it found it (a bucket that stays full keeps its word); its charge
// then counts under the new quota as it is. Memory does not grow with changes: there is one state
// word and one set of parameters.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/quota.h"
#include "floodgate/limiters/rate_limiter.h"

namespace floodgate::internal {

// What a call reads: the quota's parameters, the state word under them, and the quota's version
// (the number of changes made before).
template <class Params>
struct Snapshot {
  Params params;
  std::uint64_t word;
  std::uint64_t version;
};

template <class Rule, Threads T>
class BucketCell;

// Shared by any number of threads.
template <class Rule>
class BucketCell<Rule, Threads::Many> {
 public:
  using Params = typename Rule::Params;
  using Snapshot = internal::Snapshot<Params>;

  BucketCell(const Quota& quota, std::uint64_t word) noexcept : word_(word), quota_(quota) {
    store_params(Rule::params(quota));
  }

  // Reads a snapshot into `s` and returns how many changes of quota began and had not finished
  // before the read ended: 0 when the snapshot is consistent (otherwise `s` is garbage).
  [[gnu::always_inline]] std::uint64_t read_racing(Snapshot& s) const noexcept {
    // Acquire loads throughout: the started count's load stays after them, and whoever reads a
    // word a change wrote also reads the started count the change wrote first. (No standalone
    // fences, which ThreadSanitizer does not model.)
    s.version = finished_.load(std::memory_order_acquire);
    s.params = load_params();
    s.word = word_.load(std::memory_order_acquire);
    return started_.load(std::memory_order_relaxed) - s.version;
  }

  // Returns a consistent snapshot, waiting out a change of quota in progress (a few instructions
  // of the changing thread, which holds no lock a caller needs).
  Snapshot read() const noexcept {
    Snapshot s;
    for (int tries = 1; read_racing(s) != 0; ++tries) {
      if (tries % 64 == 0) std::this_thread::yield();
    }
    return s;
  }

  // Replaces the state word `s.word` with `next` if it is still there; reports whether it was.
  [[gnu::always_inline]] bool commit(const Snapshot& s, std::uint64_t next) noexcept {
    std::uint64_t expected = s.word;
    return word_.compare_exchange_strong(expected, next, std::memory_order_relaxed);
  }

  // Makes `quota` current: the state word becomes `carry(word, from, to)`. Does nothing if
  // `quota` is current already and `always` is false.
  template <class Carry>
  void change(const Quota& quota, bool always, Carry carry) {
    const std::lock_guard<std::mutex> lock(mu_);
    if (quota == quota_ && !always) return;
    const std::uint64_t v = finished_.load(std::memory_order_relaxed);
    started_.store(v + 1, std::memory_order_relaxed);
    // Release stores below: whoever reads one of them also reads the started count.
    const Params from = load_params();
    const Params to = Rule::params(quota);
    store_params(to);
    std::uint64_t word = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(word, carry(word, from, to), std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
    quota_ = quota;
    finished_.store(v + 1, std::memory_order_release);
  }

  // Returns the quota in force.
  Quota quota() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return quota_;
  }

  // The ready instant of the latest granted call, for rules that track it (`kTracksLastEvent`).
  // Reservations and cancels write and read it holding `lock_events()`, so that each sees the
  // state word and the instant together; an admission lowers it, rarely, without the lock.
  std::int64_t last_event() const noexcept { return last_event_.load(std::memory_order_relaxed); }
  std::unique_lock<std::mutex> lock_events() const { return std::unique_lock<std::mutex>(mu_); }
  void set_last_event(std::int64_t t) noexcept { last_event_.store(t, std::memory_order_relaxed); }

 private:
  static_assert(std::is_trivially_copyable_v<Params> && sizeof(Params) % 8 == 0);
  static constexpr std::size_t kParamWords = sizeof(Params) / 8;

  [[gnu::always_inline]] Params load_params() const noexcept {
    return load_words(std::make_index_sequence<kParamWords>{});
  }
  // One load per word, written out so that no optimization level leaves a loop through memory.
  template <std::size_t... I>
  [[gnu::always_inline]] Params load_words(std::index_sequence<I...> /*words*/) const noexcept {
    return std::bit_cast<Params>(
        std::array<std::uint64_t, kParamWords>{params_[I].load(std::memory_order_acquire)...});
  }
  void store_params(const Params& p) noexcept {
    const auto words = std::bit_cast<std::array<std::uint64_t, kParamWords>>(p);
    for (std::size_t i = 0; i < kParamWords; ++i) {
      params_[i].store(words[i], std::memory_order_release);
    }
  }

  // What every call reads, in one cache line.
  alignas(kCacheLineSize) std::atomic<std::uint64_t> word_;
  std::atomic<std::uint64_t> started_{0};   // Changes begun ...
  std::atomic<std::uint64_t> finished_{0};  // ... and completed: fewer while one is made.
  std::array<std::atomic<std::uint64_t>, kParamWords> params_;
  std::atomic<std::int64_t> last_event_{INT64_MIN};
  // What only changes and `quota()` touch, on the next line.
  alignas(kCacheLineSize) mutable std::mutex mu_;
  Quota quota_;  // Guarded by mu_.
};

// Used by one thread at a time: the same interface over plain members.
template <class Rule>
class BucketCell<Rule, Threads::One> {
 public:
  using Params = typename Rule::Params;
  using Snapshot = internal::Snapshot<Params>;

  BucketCell(const Quota& quota, std::uint64_t word) noexcept
      : word_(word), params_(Rule::params(quota)), quota_(quota) {}

  [[gnu::always_inline]] std::uint64_t read_racing(Snapshot& s) const noexcept {
    s = {params_, word_, version_};
    return 0;
  }
  Snapshot read() const noexcept { return {params_, word_, version_}; }
  [[gnu::always_inline]] bool commit(const Snapshot& /*s*/, std::uint64_t next) noexcept {
    word_ = next;
    return true;
  }

  template <class Carry>
  void change(const Quota& quota, bool always, Carry carry) {
    if (quota == quota_ && !always) return;
    const Params to = Rule::params(quota);
    word_ = carry(word_, params_, to);
    params_ = to;
    quota_ = quota;
    ++version_;
  }

  Quota quota() const { return quota_; }

  std::int64_t last_event() const noexcept { return last_event_; }
  void set_last_event(std::int64_t t) noexcept { last_event_ = t; }
  std::unique_lock<std::mutex> lock_events() const noexcept { return {}; }

 private:
  std::uint64_t word_;
  std::int64_t last_event_ = INT64_MIN;
  std::uint64_t version_ = 0;
  Params params_;
  Quota quota_;
};

// Applies `step(snapshot)`, which returns the word to store and a result, to `cell` until its
// word commits; returns the result of the step that took effect. Storing the word it was given
// commits nothing.
template <class Cell, class Step>
auto update(Cell& cell, Step step) {
  while (true) {
    const auto s = cell.read();
    auto [next, result] = step(s);
    if (next == s.word || cell.commit(s, next)) return result;
  }
}

}  // namespace floodgate::internal
