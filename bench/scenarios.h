// The standard benchmark scenarios that `floodgate bench` prints as one table, and the timing
// harness they share with floodgate_scaling: each scenario runs floodgate and the in-tree
// baseline (a mutex-guarded token bucket, or a mutex-guarded std::unordered_map for keyed
// scenarios) in the same process, one after the other, for the same time.
//
// Google Benchmark measures the same limiters in bench/limiter_benchmark.cc and
// bench/keyed_benchmark.cc; this harness needs nothing but the standard library, so the
// `floodgate` command and a statically linked scaling binary can carry it anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/time.h"

namespace floodgate::bench {

// Throughput of one contender in one scenario.
struct Outcome {
  double calls_per_second = 0;
  double admitted_fraction = 0;
};

// Runs `threads` callers for `seconds` and returns their total throughput. Each thread calls
// `make_caller(thread_index)` once to get its own caller, a callable returning whether the call
// was admitted, then calls it in batches of 256 until the time is up.
template <typename MakeCaller>
Outcome measure(int threads, double seconds, MakeCaller&& make_caller) {
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  constexpr std::size_t kPad =
      internal::kCacheLineSize / sizeof(std::int64_t);  // One counter a line.
  std::vector<std::int64_t> calls(static_cast<std::size_t>(threads) * kPad);
  std::vector<std::int64_t> admitted(calls.size());
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      auto call = make_caller(w);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::int64_t n = 0;
      std::int64_t ok = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) ok += call() ? 1 : 0;
        n += 256;
      }
      calls[static_cast<std::size_t>(w) * kPad] = n;
      admitted[static_cast<std::size_t>(w) * kPad] = ok;
    });
  }
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (std::thread& t : workers) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::int64_t total = 0;
  std::int64_t total_admitted = 0;
  for (std::size_t i = 0; i < calls.size(); i += kPad) {
    total += calls[i];
    total_admitted += admitted[i];
  }
  return {static_cast<double>(total) / elapsed,
          total == 0 ? 0.0 : static_cast<double>(total_admitted) / static_cast<double>(total)};
}

// Keeps callers' instants together: each thread advances its own caller time, and one that
// falls behind the others jumps ahead to the latest, so that it does not arrive stale and get
// denied, which is not what an admit scenario measures. Checked every 256 calls.
class SharedTime {
 public:
  explicit SharedTime(std::int64_t start_ns) : latest_(start_ns) {}
  std::int64_t catch_up(std::int64_t mine) noexcept {
    const std::int64_t ahead = latest_.load(std::memory_order_relaxed);
    if (ahead > mine) return ahead;
    latest_.store(mine, std::memory_order_relaxed);
    return mine;
  }

 private:
  alignas(internal::kCacheLineSize) std::atomic<std::int64_t> latest_;
};

// Returns a caller of `limiter.try_acquire_at(now)` whose instant starts at `start` and moves
// `step` a call, kept with the other threads' instants by `time`.
template <typename Limiter>
auto caller_time_caller(Limiter& limiter, SharedTime& time, Instant start, Nanos step) {
  return [&limiter, &time, step, now = start, n = 0]() mutable {
    const bool ok = static_cast<bool>(limiter.try_acquire_at(now));
    now += step;
    if (++n % 256 == 0) now = Instant{Nanos{time.catch_up(now.time_since_epoch().count())}};
    return ok;
  };
}

// One row of the standard table.
struct Row {
  std::string scenario;
  int threads = 1;
  Outcome floodgate;
  Outcome baseline;
  double ratio() const {
    return baseline.calls_per_second > 0 ? floodgate.calls_per_second / baseline.calls_per_second
                                         : 0;
  }
};

// Runs the standard scenarios, `seconds` per contender per row, the multi-threaded rows on
// `threads` threads, the keyed rows with `keys` keys (at most 1,000,000), and returns the table.
// `on_row` (may be empty) sees each row as it is done.
std::vector<Row> run_standard_scenarios(double seconds, int threads, int keys = 1'000'000,
                                        void (*on_row)(const Row&) = nullptr);

}  // namespace floodgate::bench
