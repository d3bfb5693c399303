// Google Benchmark scenarios for floodgate's limiters, each run beside the in-tree baseline
// (bench/mutex_token_bucket.h) in the same process. After the runs the binary prints each
// scenario's throughput ratio, floodgate / baseline. The parameters are fixed so figures compare
// across libraries:
//   S1   one thread, caller time advancing 1 us per call, quota 1e9/s burst 1e9 (all admitted)
//   S2   as S1, but reading the clock (SteadyClock; and CoarseClock, floodgate only)
//   S3t  one thread, caller time advancing 1 ns per call, quota 1/s burst 1 (nearly all denied)
//   S4   two threads on one limiter, each with its own time advancing 1 us per call, all admitted
//   S1 and S3t also run on limiters whose quota was changed once before measuring (`_reconfigured`)
//   and on the single-thread type (`GcraLimiter<SteadyClock, Threads::One>`, `_one_thread`)
//   S1, S3t and S4 also run `ScalableGcraLimiter` (`scalable`), whose point is S4 on more cores
//
// Every figure is for a process that has started a thread, as every server has: the binary
// starts (and joins) one before measuring. (glibc's mutex skips its atomic instructions until a
// process starts its second thread, which would flatter the baseline.)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/mutex_token_bucket.h"
#include "floodgate/floodgate.h"
#include "floodgate/limiters/concurrency_limiter.h"
#include "floodgate/limiters/fixed_window.h"
#include "floodgate/limiters/leaky_bucket_pacer.h"
#include "floodgate/limiters/sliding_window.h"
#include "floodgate/limiters/token_bucket.h"

namespace floodgate::bench {
namespace {

const Quota kAllAdmitted = Quota::per_second(1'000'000'000);  // Burst 1e9.
const Quota kNearlyAllDenied = Quota::per_second(1);          // Burst 1.

// Counts admissions so each scenario can show it measured what it claims.
void report(benchmark::State& state, std::int64_t admitted) {
  state.SetItemsProcessed(state.iterations());
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted) / static_cast<double>(state.iterations()),
                         benchmark::Counter::kAvgThreads);
}

template <typename Limiter>
void run_caller_time(benchmark::State& state, Limiter& limiter, Nanos step) {
  Instant now{std::chrono::seconds(1)};
  std::int64_t admitted = 0;
  for (auto _ : state) {
    const bool ok = static_cast<bool>(limiter.try_acquire_at(now));
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
    now += step;
  }
  report(state, admitted);
}

// The pacer never denies: a call "passes" when its turn is now. Same scenarios, its own verb.
class PacerAsLimiter {
 public:
  explicit PacerAsLimiter(const Quota& quota) : pacer_(quota) {}
  bool try_acquire_at(Instant now) { return pacer_.take_at(now) == now; }

 private:
  LeakyBucketPacer<> pacer_;
};

// A limiter whose quota has been changed once before measuring (`set_quota_at`): shows that a
// change leaves `try_acquire_at` as fast as before.
template <typename Limiter>
class Reconfigured {
 public:
  explicit Reconfigured(const Quota& quota) : limiter_(Quota::per_second(7)) {
    limiter_.set_quota_at(quota, Instant{});
  }
  Decision try_acquire_at(Instant now) noexcept { return limiter_.try_acquire_at(now); }

 private:
  Limiter limiter_;
};

template <typename Limiter>
void s1(benchmark::State& state) {
  Limiter limiter{kAllAdmitted};
  run_caller_time(state, limiter, std::chrono::microseconds(1));
}

template <typename Limiter>
void s3t(benchmark::State& state) {
  Limiter limiter{kNearlyAllDenied};
  run_caller_time(state, limiter, Nanos{1});
}

template <typename C>
void s2_floodgate(benchmark::State& state) {
  GcraLimiter<C> limiter{kAllAdmitted};
  std::int64_t admitted = 0;
  for (auto _ : state) {
    const bool ok = limiter.try_acquire().allowed();
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
  }
  report(state, admitted);
}
void s2_baseline(benchmark::State& state) {
  MutexTokenBucket limiter{kAllAdmitted};
  const SteadyClock clock;
  std::int64_t admitted = 0;
  for (auto _ : state) {
    const bool ok = limiter.try_acquire_at(clock.now());
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
  }
  report(state, admitted);
}

// S4 shares one limiter between the threads. `s4_time` is the latest caller time any thread has
// published: threads catch up with it as they go, and each run starts where the last one ended,
// so that no call arrives stale against the state another left.
std::atomic<std::int64_t> s4_time{1'000'000'000};

template <typename Limiter>
void s4(benchmark::State& state) {
  static Limiter limiter{kAllAdmitted};
  Instant now{Nanos{s4_time.load()}};
  std::int64_t admitted = 0;
  std::uint32_t calls = 0;
  for (auto _ : state) {
    const bool ok = static_cast<bool>(limiter.try_acquire_at(now));
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
    now += std::chrono::microseconds(1);
    // Every 256 calls, catch up with the other thread's time: a thread that fell more than the
    // window behind would arrive stale and be denied, which is not what S4 measures.
    if ((++calls & 255) == 0) {
      const std::int64_t ahead = s4_time.load(std::memory_order_relaxed);
      if (ahead > now.time_since_epoch().count()) {
        now = Instant{Nanos{ahead}};
      } else {
        s4_time.store(now.time_since_epoch().count(), std::memory_order_relaxed);
      }
    }
  }
  std::int64_t end = now.time_since_epoch().count();
  std::int64_t seen = s4_time.load();
  while (seen < end && !s4_time.compare_exchange_weak(seen, end)) {
  }
  report(state, admitted);
}

BENCHMARK(s1<GcraLimiter<>>)->Name("S1/floodgate");
BENCHMARK(s1<Reconfigured<GcraLimiter<>>>)->Name("S1/floodgate_reconfigured");
BENCHMARK(s1<GcraLimiter<SteadyClock, Threads::One>>)->Name("S1/floodgate_one_thread");
BENCHMARK(s1<ScalableGcraLimiter<>>)->Name("S1/scalable");
BENCHMARK(s1<TokenBucketLimiter<>>)->Name("S1/token_bucket");
BENCHMARK(s1<Reconfigured<TokenBucketLimiter<>>>)->Name("S1/token_bucket_reconfigured");
BENCHMARK(s1<FixedWindowLimiter<>>)->Name("S1/fixed_window");
BENCHMARK(s1<SlidingWindowLogLimiter<>>)->Name("S1/sliding_log");
BENCHMARK(s1<SlidingWindowCounterLimiter<>>)->Name("S1/sliding_counter");
BENCHMARK(s1<PacerAsLimiter>)->Name("S1/pacer");
BENCHMARK(s1<MutexTokenBucket>)->Name("S1/baseline");
BENCHMARK(s2_floodgate<SteadyClock>)->Name("S2/floodgate");
BENCHMARK(s2_floodgate<CoarseClock>)->Name("S2/floodgate_coarse_clock");
BENCHMARK(s2_baseline)->Name("S2/baseline");
BENCHMARK(s3t<GcraLimiter<>>)->Name("S3t/floodgate");
BENCHMARK(s3t<Reconfigured<GcraLimiter<>>>)->Name("S3t/floodgate_reconfigured");
BENCHMARK(s3t<GcraLimiter<SteadyClock, Threads::One>>)->Name("S3t/floodgate_one_thread");
BENCHMARK(s3t<ScalableGcraLimiter<>>)->Name("S3t/scalable");
BENCHMARK(s3t<TokenBucketLimiter<>>)->Name("S3t/token_bucket");
BENCHMARK(s3t<Reconfigured<TokenBucketLimiter<>>>)->Name("S3t/token_bucket_reconfigured");
BENCHMARK(s3t<FixedWindowLimiter<>>)->Name("S3t/fixed_window");
BENCHMARK(s3t<SlidingWindowLogLimiter<>>)->Name("S3t/sliding_log");
BENCHMARK(s3t<SlidingWindowCounterLimiter<>>)->Name("S3t/sliding_counter");
BENCHMARK(s3t<MutexTokenBucket>)->Name("S3t/baseline");
BENCHMARK(s4<GcraLimiter<>>)->Name("S4/floodgate")->Threads(2)->UseRealTime();
BENCHMARK(s4<ScalableGcraLimiter<>>)->Name("S4/scalable")->Threads(2)->UseRealTime();
BENCHMARK(s4<TokenBucketLimiter<>>)->Name("S4/token_bucket")->Threads(2)->UseRealTime();
BENCHMARK(s4<FixedWindowLimiter<>>)->Name("S4/fixed_window")->Threads(2)->UseRealTime();
BENCHMARK(s4<SlidingWindowLogLimiter<>>)->Name("S4/sliding_log")->Threads(2)->UseRealTime();
BENCHMARK(s4<SlidingWindowCounterLimiter<>>)->Name("S4/sliding_counter")->Threads(2)->UseRealTime();
BENCHMARK(s4<PacerAsLimiter>)->Name("S4/pacer")->Threads(2)->UseRealTime();
BENCHMARK(s4<MutexTokenBucket>)->Name("S4/baseline")->Threads(2)->UseRealTime();

// ConcurrencyLimiter's scenarios, against a counter behind a std::mutex:
//   C1  one thread: acquire and release (all admitted)
//   C3  one thread: try to acquire while the limit is taken (all denied)
//   C4  two threads: acquire and release on one limiter
class MutexInFlight {
 public:
  explicit MutexInFlight(std::uint64_t limit) : limit_(limit) {}
  bool try_acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ == limit_) return false;
    ++in_flight_;
    return true;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
  }

 private:
  const std::uint64_t limit_;
  std::mutex mu_;
  std::uint64_t in_flight_ = 0;  // Guarded by mu_.
};

bool acquire_release(ConcurrencyLimiter& limiter) { return limiter.try_acquire().has_value(); }
bool acquire_release(MutexInFlight& limiter) {
  if (!limiter.try_acquire()) return false;
  limiter.release();
  return true;
}
bool try_only(ConcurrencyLimiter& limiter) { return limiter.try_acquire().has_value(); }
bool try_only(MutexInFlight& limiter) { return limiter.try_acquire(); }
// Takes the only slot for the rest of the scenario.
std::optional<ConcurrencyLimiter::Permit> hold(ConcurrencyLimiter& limiter) {
  return limiter.try_acquire();
}
bool hold(MutexInFlight& limiter) { return limiter.try_acquire(); }

template <typename L>
void c1(benchmark::State& state) {
  L limiter{64};
  std::int64_t admitted = 0;
  for (auto _ : state) admitted += acquire_release(limiter) ? 1 : 0;
  report(state, admitted);
}

template <typename L>
void c3(benchmark::State& state) {
  L limiter{1};
  const auto held = hold(limiter);
  benchmark::DoNotOptimize(held);
  std::int64_t admitted = 0;
  for (auto _ : state) admitted += try_only(limiter) ? 1 : 0;
  report(state, admitted);
}

template <typename L>
void c4(benchmark::State& state) {
  static L limiter{64};
  std::int64_t admitted = 0;
  for (auto _ : state) admitted += acquire_release(limiter) ? 1 : 0;
  report(state, admitted);
}

BENCHMARK(c1<ConcurrencyLimiter>)->Name("C1/floodgate");
BENCHMARK(c1<MutexInFlight>)->Name("C1/baseline");
BENCHMARK(c3<ConcurrencyLimiter>)->Name("C3/floodgate");
BENCHMARK(c3<MutexInFlight>)->Name("C3/baseline");
BENCHMARK(c4<ConcurrencyLimiter>)->Name("C4/floodgate")->Threads(2)->UseRealTime();
BENCHMARK(c4<MutexInFlight>)->Name("C4/baseline")->Threads(2)->UseRealTime();

// Prints the usual console table, then each scenario's throughput against its baseline.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      // With --benchmark_repetitions, compare medians; otherwise the single run.
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      const auto items = run.counters.find("items_per_second");
      if (items == run.counters.end()) continue;
      std::string name = run.run_name.function_name;  // "S1/floodgate"
      if (!run.run_name.threads.empty()) name += "/" + run.run_name.threads;
      throughput_[name] = items->second.value;
    }
  }

  void print_ratios() const {
    std::printf("\n%-34s %14s %14s %10s\n", "scenario (floodgate vs baseline)", "floodgate",
                "baseline", "ratio");
    for (const auto& [name, ours] : throughput_) {
      const std::size_t slash = name.find('/');
      std::string scenario = name.substr(0, slash);
      std::string variant = name.substr(slash + 1);
      if (variant.rfind("baseline", 0) == 0) continue;
      std::string suffix;
      if (const std::size_t threads = variant.find("/threads"); threads != std::string::npos) {
        suffix = variant.substr(threads);
      }
      const auto base = throughput_.find(scenario.append("/baseline").append(suffix));
      if (base == throughput_.end()) continue;
      std::printf("%-34s %11.2f ns %11.2f ns %9.2fx\n", name.c_str(), 1e9 / ours,
                  1e9 / base->second, ours / base->second);
    }
    std::printf(
        "(time per admitted-or-denied call, or per rule loaded for L1, aggregated over threads; "
        "ratio = throughput "
        "floodgate / baseline, higher is better)\n");
  }

 private:
  std::map<std::string, double> throughput_;
};

}  // namespace
}  // namespace floodgate::bench

int main(int argc, char** argv) {
  std::thread([] {}).join();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  floodgate::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
