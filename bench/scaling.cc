// Thread scaling: throughput of one shared limiter at 1, 2, 4, ... threads, floodgate's
// `ScalableGcraLimiter` and `GcraLimiter` beside the minimal one-atomic GCRA (the hot path's
// yardstick) and the in-tree mutex token bucket, in one process; then how many calls the scalable
// limiter denies that an exact sequential GCRA would admit on the same arrivals. Built without
// Google Benchmark (and statically with -DFLOODGATE_STATIC_BENCH=ON) so one binary runs on any
// x86-64 Linux machine.
//
//   floodgate_scaling [--seconds S] [--max-threads N]
//
// Scenarios, with each thread's caller time advancing on its own:
//   admit  quota 1e9/s burst 1e9, time +1 us a call: every call admitted
//   deny   quota 1/s burst 1, time +1 ns a call: nearly every call denied
// Accuracy: quota 1,000,000/s burst 100; the threads draw their instants from one shared clock
// that advances 100 ns a call (10 times the rate: saturation) or 2 us a call (half the rate);
// the calls, sorted by instant, are decided again by one GcraLimiter on one thread.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/hot_path/reference_gcra.h"
#include "bench/mutex_token_bucket.h"
#include "bench/scenarios.h"
#include "floodgate/floodgate.h"

namespace floodgate::bench {
namespace {

// The reference answers with its own result type; the callers read only the verdict.
class Reference {
 public:
  explicit Reference(const Quota& quota) : gcra_(quota) {}
  bool try_acquire_at(Instant now) noexcept { return gcra_.try_acquire_at(now).allowed; }

 private:
  ReferenceGcra gcra_;
};

// The debt-counter design, for comparison only: an admission adds its charge to the shared
// arrival time with `fetch_add` (no retry) and takes it back if that went past the window; an
// idle bucket (arrival time in the past) needs a compare-and-swap to restart from `now`. Not a
// correct limiter under contention (a taken-back charge can deny others meanwhile).
class DebtCounter {
 public:
  explicit DebtCounter(const Quota& quota)
      : interval_(quota.interval().count()),
        window_(quota.interval().count() * static_cast<std::int64_t>(quota.burst())) {}
  bool try_acquire_at(Instant now) noexcept {
    const std::int64_t t = now.time_since_epoch().count();
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    if (tat < t && tat_.compare_exchange_strong(tat, t + interval_)) return true;
    if (tat_.fetch_add(interval_, std::memory_order_acq_rel) + interval_ - t <= window_) {
      return true;
    }
    tat_.fetch_sub(interval_, std::memory_order_relaxed);
    return false;
  }

 private:
  const std::int64_t interval_;
  const std::int64_t window_;
  alignas(64) std::atomic<std::int64_t> tat_{INT64_MIN / 2};
};

// One hot key of a `KeyedLimiter`: every thread admits on the same key.
class HotKey {
 public:
  explicit HotKey(const Quota& quota) : keyed_({.default_quota = quota, .max_keys = 1024}) {}
  Decision try_acquire_at(Instant now) { return keyed_.try_acquire_at("hot", now); }

 private:
  KeyedLimiter<> keyed_;
};

// Runs `threads` callers of `limiter` for `seconds`, each advancing its caller time by `step`.
template <typename Limiter>
Outcome measure_limiter(const Quota& quota, int threads, double seconds, Nanos step) {
  auto limiter = std::make_unique<Limiter>(quota);
  const Instant start{std::chrono::seconds(1)};
  SharedTime time(start.time_since_epoch().count());
  return measure(threads, seconds,
                 [&](int) { return caller_time_caller(*limiter, time, start, step); });
}

struct Accuracy {
  std::uint64_t calls = 0;
  std::uint64_t admitted = 0;
  std::uint64_t exact_admitted = 0;    // By one GcraLimiter, the calls in order of instant.
  std::uint64_t wrongly_denied = 0;    // Denied here, admitted by the exact replay.
  std::uint64_t wrongly_admitted = 0;  // Admitted here, denied by the exact replay (order only).
};

// Runs `threads` threads making `calls` calls in all on `limiter`, each at the next instant of a
// shared clock that advances `step` a call, then decides the same calls again in order of
// instant on one exact GcraLimiter and counts the differences.
template <typename Limiter>
Accuracy accuracy(const Quota& quota, int threads, Nanos step, std::uint64_t calls) {
  auto limiter = std::make_unique<Limiter>(quota);
  alignas(internal::kCacheLineSize) std::atomic<std::int64_t> clock{1'000'000'000};
  std::vector<std::vector<std::pair<std::int64_t, bool>>> seen(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      auto& mine = seen[static_cast<std::size_t>(w)];
      mine.reserve(calls / static_cast<std::uint64_t>(threads));
      for (std::uint64_t i = 0; i < calls / static_cast<std::uint64_t>(threads); ++i) {
        const std::int64_t at = clock.fetch_add(step.count(), std::memory_order_relaxed);
        mine.emplace_back(at, limiter->try_acquire_at(Instant{Nanos{at}}).allowed());
      }
    });
  }
  for (std::thread& t : workers) t.join();
  std::vector<std::pair<std::int64_t, bool>> all;
  for (const auto& mine : seen) all.insert(all.end(), mine.begin(), mine.end());
  std::sort(all.begin(), all.end());
  GcraLimiter<ManualClock> exact(quota);
  Accuracy a;
  for (const auto& [at, admitted] : all) {
    const bool should = exact.try_acquire_at(Instant{Nanos{at}}).allowed();
    ++a.calls;
    a.admitted += admitted ? 1 : 0;
    a.exact_admitted += should ? 1 : 0;
    a.wrongly_denied += should && !admitted ? 1 : 0;
    a.wrongly_admitted += admitted && !should ? 1 : 0;
  }
  return a;
}

int run(int argc, char** argv) {
  double seconds = 0.5;
  int max_threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--max-threads" && i + 1 < argc) {
      max_threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "floodgate_scaling: unknown argument \"%s\"\n", argv[i]);
      return 2;
    }
  }
  if (seconds <= 0 || max_threads < 1) {
    std::fprintf(stderr, "floodgate_scaling: --seconds and --max-threads must be positive\n");
    return 2;
  }
  std::printf(
      "hardware threads: %u, %.2f s per measurement; Mops/s, and the scalable "
      "limiter's throughput over each other's\n",
      std::thread::hardware_concurrency(), seconds);
  std::printf("%-6s %7s %9s %9s %9s %9s %8s %8s %8s\n", "scen", "threads", "scalable", "gcra",
              "reference", "mutex", "/gcra", "/ref", "/mutex");
  struct Scenario {
    const char* name;
    Quota quota;
    Nanos step;
  };
  const Scenario scenarios[] = {{"admit", Quota::per_second(1'000'000'000), Nanos{1000}},
                                {"deny", Quota::per_second(1), Nanos{1}}};
  for (const Scenario& s : scenarios) {
    for (int threads = 1; threads <= max_threads; threads *= 2) {
      const double scalable =
          measure_limiter<ScalableGcraLimiter<>>(s.quota, threads, seconds, s.step)
              .calls_per_second;
      const double gcra =
          measure_limiter<GcraLimiter<>>(s.quota, threads, seconds, s.step).calls_per_second;
      const double reference =
          measure_limiter<Reference>(s.quota, threads, seconds, s.step).calls_per_second;
      const double mutex =
          measure_limiter<MutexTokenBucket>(s.quota, threads, seconds, s.step).calls_per_second;
      std::printf("%-6s %7d %9.1f %9.1f %9.1f %9.1f %7.2fx %7.2fx %7.2fx\n", s.name, threads,
                  scalable / 1e6, gcra / 1e6, reference / 1e6, mutex / 1e6, scalable / gcra,
                  scalable / reference, scalable / mutex);
      std::fflush(stdout);
    }
  }

  // The designs the issue named, on one shared limiter: leases (ScalableGcraLimiter), a debt
  // counter with fetch_add, and the compare-and-swap of GcraLimiter; admitting at 1 us a call (an
  // idle bucket each call: the debt counter's compare-and-swap path) and at 1 ns a call with a
  // burst of 10^9 (a backlog: its fetch_add path).
  std::printf("\ndesigns, Mops/s: leases, fetch_add debt counter, compare-and-swap\n");
  for (const Nanos step : {Nanos{1000}, Nanos{1}}) {
    for (int threads = 1; threads <= max_threads; threads *= 2) {
      const Quota wide = Quota::per_second(1'000'000'000);
      std::printf(
          "step %4lld ns %7d %9.1f %9.1f %9.1f\n", static_cast<long long>(step.count()), threads,
          measure_limiter<ScalableGcraLimiter<>>(wide, threads, seconds, step).calls_per_second /
              1e6,
          measure_limiter<DebtCounter>(wide, threads, seconds, step).calls_per_second / 1e6,
          measure_limiter<GcraLimiter<>>(wide, threads, seconds, step).calls_per_second / 1e6);
      std::fflush(stdout);
    }
  }

  // Whether the keyed limiter's hottest keys would gain from leases: all threads on one key.
  std::printf("\none hot key, Mops/s: KeyedLimiter on one key, ScalableGcraLimiter, GcraLimiter\n");
  for (int threads = 1; threads <= max_threads; threads *= 2) {
    const Quota wide = Quota::per_second(1'000'000'000);
    std::printf(
        "threads %3d %9.1f %9.1f %9.1f\n", threads,
        measure_limiter<HotKey>(wide, threads, seconds, Nanos{1000}).calls_per_second / 1e6,
        measure_limiter<ScalableGcraLimiter<>>(wide, threads, seconds, Nanos{1000})
                .calls_per_second /
            1e6,
        measure_limiter<GcraLimiter<>>(wide, threads, seconds, Nanos{1000}).calls_per_second / 1e6);
    std::fflush(stdout);
  }

  const Quota quota = Quota::per_second(1'000'000).with_burst(100);
  constexpr std::uint64_t kCalls = 2'000'000;
  std::printf(
      "\naccuracy: %s, %llu calls; wrongly denied = denied here, admitted by an exact "
      "GCRA replaying the calls in order of instant\n",
      quota.to_string().c_str(), static_cast<unsigned long long>(kCalls));
  std::printf("%-11s %7s %-9s %10s %10s %14s %14s\n", "load", "threads", "limiter", "admitted",
              "exact", "wrongly denied", "wrongly admit");
  for (const auto& [load, step] :
       {std::pair{"saturation", Nanos{100}}, std::pair{"half", Nanos{2000}}}) {
    for (int threads = 1; threads <= max_threads; threads *= 2) {
      for (const bool scalable : {true, false}) {
        const Accuracy a = scalable ? accuracy<ScalableGcraLimiter<>>(quota, threads, step, kCalls)
                                    : accuracy<GcraLimiter<>>(quota, threads, step, kCalls);
        std::printf("%-11s %7d %-9s %10llu %10llu %13.4f%% %13.4f%%\n", load, threads,
                    scalable ? "scalable" : "gcra", static_cast<unsigned long long>(a.admitted),
                    static_cast<unsigned long long>(a.exact_admitted),
                    100.0 * static_cast<double>(a.wrongly_denied) / static_cast<double>(a.calls),
                    100.0 * static_cast<double>(a.wrongly_admitted) / static_cast<double>(a.calls));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace floodgate::bench

int main(int argc, char** argv) { return floodgate::bench::run(argc, argv); }
