// Thread scaling: throughput of one shared limiter at 1, 2, 4, ... threads, floodgate's
// `GcraLimiter` against the in-tree mutex baseline, in one process. Built without Google
// Benchmark (and statically with -DFLOODGATE_STATIC_BENCH=ON) so one binary runs on any x86-64
// Linux machine.
//
//   floodgate_scaling [--seconds S] [--max-threads N]
//
// Scenarios, with each thread's caller time advancing on its own:
//   admit  quota 1e9/s burst 1e9, time +1 us a call: every call admitted (a CAS per call)
//   deny   quota 1/s burst 1, time +1 ns a call: nearly every call denied (a load per call)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/mutex_token_bucket.h"
#include "floodgate/floodgate.h"

namespace floodgate::bench {
namespace {

struct Outcome {
  double calls_per_second;
  double admitted_fraction;
};

// Runs `threads` callers against `limiter` for `seconds` and returns the total throughput.
template <typename Limiter>
Outcome measure(Limiter& limiter, int threads, double seconds, Nanos step) {
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  alignas(kCacheLineSize) std::atomic<std::int64_t> latest{0};
  std::vector<std::int64_t> calls(static_cast<std::size_t>(threads) * 16);  // Padded slots.
  std::vector<std::int64_t> admitted(calls.size());
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      Instant now{std::chrono::seconds(1)};
      std::int64_t n = 0;
      std::int64_t ok = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) {
          ok += static_cast<bool>(limiter.try_acquire_at(now)) ? 1 : 0;
          now += step;
        }
        n += 256;
        // Keep the threads' times together: a thread that fell far behind would arrive stale
        // and be denied, which is not what the scenario measures.
        const std::int64_t ahead = latest.load(std::memory_order_relaxed);
        if (ahead > now.time_since_epoch().count()) {
          now = Instant{Nanos{ahead}};
        } else {
          latest.store(now.time_since_epoch().count(), std::memory_order_relaxed);
        }
      }
      calls[static_cast<std::size_t>(w) * 16] = n;
      admitted[static_cast<std::size_t>(w) * 16] = ok;
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
  for (std::size_t i = 0; i < calls.size(); i += 16) {
    total += calls[i];
    total_admitted += admitted[i];
  }
  return {static_cast<double>(total) / elapsed,
          static_cast<double>(total_admitted) / static_cast<double>(total)};
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
  std::printf("hardware threads: %u, %.2f s per measurement\n", std::thread::hardware_concurrency(),
              seconds);
  std::printf("%-6s %7s %16s %16s %8s %10s\n", "scen", "threads", "floodgate Mops/s",
              "baseline Mops/s", "ratio", "admitted");
  struct Scenario {
    const char* name;
    Quota quota;
    Nanos step;
  };
  const Scenario scenarios[] = {{"admit", Quota::per_second(1'000'000'000), Nanos{1000}},
                                {"deny", Quota::per_second(1), Nanos{1}}};
  for (const Scenario& s : scenarios) {
    for (int threads = 1; threads <= max_threads; threads *= 2) {
      auto ours_limiter = std::make_unique<GcraLimiter<>>(s.quota);
      auto base_limiter = std::make_unique<MutexTokenBucket>(s.quota);
      const Outcome ours = measure(*ours_limiter, threads, seconds, s.step);
      const Outcome base = measure(*base_limiter, threads, seconds, s.step);
      std::printf("%-6s %7d %16.1f %16.1f %7.2fx %9.4f\n", s.name, threads,
                  ours.calls_per_second / 1e6, base.calls_per_second / 1e6,
                  ours.calls_per_second / base.calls_per_second, ours.admitted_fraction);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace floodgate::bench

int main(int argc, char** argv) { return floodgate::bench::run(argc, argv); }
