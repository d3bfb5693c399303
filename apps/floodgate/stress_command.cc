// floodgate stress: many threads on one limiter, then the testkit's checks on what they saw.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "floodgate/floodgate.h"
#include "floodgate/replay/replayer.h"
#include "stress.h"

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate stress [flags]

Runs --threads workers against one limiter, each making --ops calls at caller instants that
together ask for about twice the quota, with costs from 1 to 3, and then checks what they
recorded: the limiter's bound over every window of caller time (GCRA and token bucket: at most
burst + rate x window; fixed window: at most the count per aligned window; sliding log: at most
the count in any window; sliding counter: under twice the count), and for GCRA that the
decisions are exactly the rule's in the order the limiter serialized them (linearizable).
scalable-gcra (ScalableGcraLimiter, one lease per thread) is checked against GCRA's bound.
Workers only record; the checks run after every worker has been joined, and a watchdog ends a
run that hangs. Prints the report; exit status 0 if every check passed, 3 on any violation or
hang, 1 on bad flags.

Flags:
  --algorithm NAME   gcra (default), scalable-gcra, token-bucket, fixed-window, sliding-log,
                     sliding-counter
  --quota TEXT       e.g. "1000/s burst 50" (default "1000/s burst 50"; windows: "1000/s")
  --threads N        workers (default: the hardware's threads, at least 2)
  --ops N            calls per worker (default 20000)
  --seed N           seeds the workers' costs and instants (default 1)
  --deadline S       seconds before the watchdog declares a hang, from 0.001 (default 60); a
                     hang prints where each worker was and exits with status 3
)";

}  // namespace

int run_stress(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  const auto fail = [](const std::string& message) { return usage_error("stress", message); };
  Result<Flags> parsed = Flags::parse(
      "stress", args, {"algorithm", "quota", "threads", "ops", "seed", "deadline"}, {});
  if (!parsed) return fail(parsed.error().message());
  const Flags& flags = *parsed;
  if (!flags.positional().empty()) {
    return fail("unexpected argument \"" + flags.positional()[0] + "\" (see --help)");
  }
  const std::string algorithm_name = flags.get_or("algorithm", "gcra");
  const bool scalable = algorithm_name == "scalable-gcra";
  Result<Algorithm> algorithm = parse_algorithm(scalable ? std::string("gcra") : algorithm_name);
  if (!algorithm) return fail("flag --algorithm: " + algorithm.error().message());
  if (*algorithm == Algorithm::EnvoyFixedWindow) {
    return fail(
        "flag --algorithm: \"envoy-fixed-window\" is a rule of keyed and Redis limiters, "
        "with no single-key limiter to stress");
  }
  const bool window = !has_burst(*algorithm);
  Result<Quota> quota = Quota::parse(flags.get_or("quota", window ? "1000/s" : "1000/s burst 50"));
  if (!quota) return fail("flag --quota: " + quota.error().message());
  if (window && quota->burst() != quota->count()) {
    return fail("flag --quota: " + quota->to_string() + ": algorithm " +
                std::string(to_string(*algorithm)) + " needs a burst equal to the count");
  }
  const unsigned hardware = std::max(2u, std::thread::hardware_concurrency());
  Result<std::uint64_t> threads = flags.get_uint("threads", hardware, 1, 256);
  Result<std::uint64_t> ops = flags.get_uint("ops", 20'000, 1, 10'000'000);
  Result<std::uint64_t> seed = flags.get_uint("seed", 1, 0, UINT64_MAX);
  Result<double> deadline = flags.get_seconds("deadline", 60);
  if (!threads) return fail(threads.error().message());
  if (!ops) return fail(ops.error().message());
  if (!seed) return fail(seed.error().message());
  if (!deadline) return fail(deadline.error().message());
  // Every call is recorded (about 100 bytes each) before the checks run.
  constexpr std::uint64_t kMaxCalls = 20'000'000;
  if (*threads * *ops > kMaxCalls) {
    return fail("--threads " + std::to_string(*threads) + " x --ops " + std::to_string(*ops) +
                " is more than the " + std::to_string(kMaxCalls) + " calls a run may record");
  }
  const StressOptions options{static_cast<int>(*threads), *ops, *seed, *deadline, kExitViolation};

  std::printf("floodgate stress: %s, %s, %d threads x %llu calls, seed %llu\n",
              scalable ? "scalable-gcra" : std::string(to_string(*algorithm)).c_str(),
              quota->to_string().c_str(), options.threads,
              static_cast<unsigned long long>(options.ops),
              static_cast<unsigned long long>(options.seed));
  const StressOutcome outcome = [&] {
    if (scalable) {
      ScalableGcraLimiter<ManualClock> limiter(*quota);
      return stress_scalable(limiter, *quota, options);
    }
    switch (*algorithm) {
      case Algorithm::Gcra: {
        GcraLimiter<ManualClock> limiter(*quota);
        return stress(limiter, *algorithm, *quota, options);
      }
      case Algorithm::TokenBucket: {
        TokenBucketLimiter<ManualClock> limiter(*quota);
        return stress(limiter, *algorithm, *quota, options);
      }
      case Algorithm::FixedWindow: {
        FixedWindowLimiter<ManualClock> limiter(*quota);
        return stress(limiter, *algorithm, *quota, options);
      }
      case Algorithm::SlidingLog: {
        SlidingWindowLogLimiter<ManualClock> limiter(*quota);
        return stress(limiter, *algorithm, *quota, options);
      }
      case Algorithm::SlidingCounter:
      case Algorithm::EnvoyFixedWindow:
        break;
    }
    SlidingWindowCounterLimiter<ManualClock> limiter(*quota);
    return stress(limiter, *algorithm, *quota, options);
  }();
  std::fputs(outcome.describe().c_str(), stdout);
  return outcome.ok() ? kExitOk : kExitViolation;
}

}  // namespace floodgate::app
