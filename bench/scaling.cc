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
#include "bench/scenarios.h"
#include "floodgate/floodgate.h"

namespace floodgate::bench {
namespace {

// Runs `threads` callers of `limiter` for `seconds`, each advancing its caller time by `step`.
template <typename Limiter>
Outcome measure_limiter(Limiter& limiter, int threads, double seconds, Nanos step) {
  const Instant start{std::chrono::seconds(1)};
  SharedTime time(start.time_since_epoch().count());
  return measure(threads, seconds,
                 [&](int) { return caller_time_caller(limiter, time, start, step); });
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
      const Outcome ours = measure_limiter(*ours_limiter, threads, seconds, s.step);
      const Outcome base = measure_limiter(*base_limiter, threads, seconds, s.step);
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
