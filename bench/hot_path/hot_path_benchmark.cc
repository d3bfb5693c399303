// floodgate's hot path as a user's program gets it: built against the installed package, at the
// optimization level of the user's build (CMake's RelWithDebInfo, -O2, which Debian uses, and
// Release, -O3), in a process that has started a thread, beside the smallest lock-free GCRA
// (reference_gcra.h) compiled into the same binary. Each scenario runs both contenders in the
// same loop; the binary prints each one's time per call and the ratio floodgate / reference
// (lower is better):
//   admit        caller time advancing 1 us per call, quota 1e9/s burst 1e9: every call admitted
//   deny         caller time advancing 1 ns per call, quota 1/s burst 1: all but the first denied,
//                reading only `allowed()`
//   deny_429     as deny, also reading what a 429 reply needs: retry_after, remaining and limit
// The rows for TokenBucketLimiter, GcraLimiter<SteadyClock, Threads::One> and
// ScalableGcraLimiter (one thread here; its point is many) are for comparison; the reference is a
// GCRA, so GcraLimiter's rows are the like-for-like ones.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/floodgate.h"
#include "reference_gcra.h"

#ifndef FLOODGATE_BENCH_BUILD
#define FLOODGATE_BENCH_BUILD "unknown build type"
#endif

namespace floodgate::bench {
namespace {

bool allowed(const Decision& d) { return d.allowed(); }
bool allowed(const ReferenceGcra::Result& r) { return r.allowed; }

// What a 429 reply reads, summed so that none of it can be optimized away.
std::uint64_t reply_fields(const Decision& d) {
  return static_cast<std::uint64_t>(d.retry_after().count()) + d.remaining() + d.limit();
}
std::uint64_t reply_fields(const ReferenceGcra::Result& r) {
  return static_cast<std::uint64_t>(r.retry_after_ns) + r.remaining + r.limit;
}

// The single-thread type, for comparison (the targets are for the default, shared type).
using OneThread = GcraLimiter<SteadyClock, Threads::One>;

const Quota kAllAdmitted = Quota::per_second(1'000'000'000);
const Quota kNearlyAllDenied = Quota::per_second(1);

template <class Limiter>
void admit(benchmark::State& state) {
  Limiter limiter{kAllAdmitted};
  Instant now{std::chrono::seconds(1)};
  std::int64_t admitted = 0;
  for (auto _ : state) {
    admitted += allowed(limiter.try_acquire_at(now)) ? 1 : 0;
    now += std::chrono::microseconds(1);
  }
  benchmark::DoNotOptimize(admitted);
  state.counters["admitted"] =
      static_cast<double>(admitted) / static_cast<double>(state.iterations());
}

// Denials; with `kReply`, each also reads what a 429 reply needs.
template <class Limiter, bool kReply>
void denials(benchmark::State& state) {
  Limiter limiter{kNearlyAllDenied};
  Instant now{std::chrono::seconds(1)};
  std::int64_t admitted = 0;
  std::uint64_t sink = 0;
  for (auto _ : state) {
    const auto d = limiter.try_acquire_at(now);
    if (allowed(d)) {
      ++admitted;
    } else if constexpr (kReply) {
      sink += reply_fields(d);
    }
    now += Nanos{1};
  }
  benchmark::DoNotOptimize(admitted);
  benchmark::DoNotOptimize(sink);
  state.counters["admitted"] =
      static_cast<double>(admitted) / static_cast<double>(state.iterations());
}
template <class Limiter>
void deny(benchmark::State& state) {
  denials<Limiter, false>(state);
}
template <class Limiter>
void deny_429(benchmark::State& state) {
  denials<Limiter, true>(state);
}

// The fastest repetition: on a shared machine, noise only ever adds time.
double fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

#define FLOODGATE_HOT_PATH(scenario, limiter, name) \
  BENCHMARK(scenario<limiter>)->Name(#scenario "/" name)->ComputeStatistics("min", fastest)

FLOODGATE_HOT_PATH(admit, ReferenceGcra, "reference");
FLOODGATE_HOT_PATH(admit, GcraLimiter<>, "GcraLimiter");
FLOODGATE_HOT_PATH(admit, TokenBucketLimiter<>, "TokenBucketLimiter");
FLOODGATE_HOT_PATH(admit, OneThread, "GcraLimiter<Threads::One>");
FLOODGATE_HOT_PATH(admit, ScalableGcraLimiter<>, "ScalableGcraLimiter");
FLOODGATE_HOT_PATH(deny, ReferenceGcra, "reference");
FLOODGATE_HOT_PATH(deny, GcraLimiter<>, "GcraLimiter");
FLOODGATE_HOT_PATH(deny, TokenBucketLimiter<>, "TokenBucketLimiter");
FLOODGATE_HOT_PATH(deny, OneThread, "GcraLimiter<Threads::One>");
FLOODGATE_HOT_PATH(deny, ScalableGcraLimiter<>, "ScalableGcraLimiter");
FLOODGATE_HOT_PATH(deny_429, ReferenceGcra, "reference");
FLOODGATE_HOT_PATH(deny_429, GcraLimiter<>, "GcraLimiter");
FLOODGATE_HOT_PATH(deny_429, TokenBucketLimiter<>, "TokenBucketLimiter");
FLOODGATE_HOT_PATH(deny_429, OneThread, "GcraLimiter<Threads::One>");
FLOODGATE_HOT_PATH(deny_429, ScalableGcraLimiter<>, "ScalableGcraLimiter");

// Prints the usual console output, then a table of each contender's time per call and its ratio
// to the reference of the same scenario (the fastest of the repetitions when there are several).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "min") continue;
      if (run.run_type == Run::RT_Iteration && run.repetitions > 1) continue;
      ns_[run.run_name.function_name] = run.GetAdjustedCPUTime();
    }
  }

  void print_table() const {
    std::printf("\nhot path, %s build (ratio = time per call / the reference GCRA's)\n",
                FLOODGATE_BENCH_BUILD);
    std::printf("%-36s %10s %10s %8s\n", "scenario/limiter", "ns", "reference", "ratio");
    for (const auto& [name, ns] : ns_) {
      const std::string scenario = name.substr(0, name.find('/'));
      if (name == scenario + "/reference") continue;
      const auto ref = ns_.find(scenario + "/reference");
      if (ref == ns_.end()) continue;
      std::printf("%-36s %10.2f %10.2f %7.2fx\n", name.c_str(), ns, ref->second, ns / ref->second);
    }
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace
}  // namespace floodgate::bench

int main(int argc, char** argv) {
  // Servers have threads: measure as in a process that has started one.
  std::thread([] {}).join();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  floodgate::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_table();
  benchmark::Shutdown();
  return 0;
}
