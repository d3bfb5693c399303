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
#include "floodgate/testkit/limiter_checks.h"
#include "floodgate/testkit/runner.h"

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate stress [flags]

Runs --threads workers against one limiter, each making --ops calls at caller instants that
together ask for about twice the quota, with costs from 1 to 3, and then checks what they
recorded: the limiter's bound over every window of caller time (GCRA and token bucket: at most
burst + rate x window; fixed window: at most the count per aligned window; sliding log: at most
the count in any window; sliding counter: under twice the count), and for GCRA that the
decisions are exactly the rule's in the order the limiter serialized them (linearizable).
Workers only record; the checks run after every worker has been joined, and a watchdog ends a
run that hangs. Prints the report; exit status 0 if every check passed, 3 on any violation or
hang, 1 on bad flags.

Flags:
  --algorithm NAME   gcra (default), token-bucket, fixed-window, sliding-log, sliding-counter
  --quota TEXT       e.g. "1000/s burst 50" (default "1000/s burst 50"; windows: "1000/s")
  --threads N        workers (default: the hardware's threads, at least 2)
  --ops N            calls per worker (default 20000)
  --seed N           seeds the workers' costs and instants (default 1)
  --deadline S       seconds before the watchdog declares a hang (default 60)
)";

using Call = testkit::LimiterCall;
using History = std::vector<testkit::Operation<Call>>;

// Runs the workers against `limiter` and returns the report.
template <typename Limiter>
testkit::RunReport<Call> hammer(Limiter& limiter, const Quota& quota, int threads,
                                std::uint64_t ops, std::uint64_t seed, double deadline) {
  const Instant t0{std::chrono::seconds(1000)};
  // Each worker alone asks for 2/threads of the quota's rate; all of them about twice of it.
  const std::int64_t step = std::max<std::int64_t>(1, quota.interval().count() * threads / 2);
  const auto limit = std::chrono::milliseconds(static_cast<std::int64_t>(deadline * 1000));
  return testkit::run<Call>(
      {.workers = threads,
       .stall_timeout = limit,
       .deadline = limit,
       .seed = seed,
       .name = "floodgate stress"},
      [&](testkit::Worker<Call>& w) {
        Instant at =
            t0 + Nanos{static_cast<std::int64_t>(w.rng()() % static_cast<std::uint64_t>(step))};
        for (std::uint64_t i = 0; i < ops && w.keep_going(); ++i) {
          const std::uint64_t cost = 1 + w.rng()() % std::min<std::uint64_t>(3, quota.burst());
          (void)testkit::acquire(w, limiter, at, cost);
          at += Nanos{step / 2 +
                      static_cast<std::int64_t>(w.rng()() % static_cast<std::uint64_t>(step))};
        }
      });
}

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
  Result<replay::Algorithm> algorithm = replay::parse_algorithm(flags.get_or("algorithm", "gcra"));
  if (!algorithm) return fail("flag --algorithm: " + algorithm.error().message());
  const bool window = *algorithm == replay::Algorithm::FixedWindow ||
                      *algorithm == replay::Algorithm::SlidingLog ||
                      *algorithm == replay::Algorithm::SlidingCounter;
  Result<Quota> quota = Quota::parse(flags.get_or("quota", window ? "1000/s" : "1000/s burst 50"));
  if (!quota) return fail("flag --quota: " + quota.error().message());
  if (window && quota->burst() != quota->count()) {
    return fail("flag --quota: " + quota->to_string() + ": algorithm " +
                std::string(replay::to_string(*algorithm)) + " needs a burst equal to the count");
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
  const int n = static_cast<int>(*threads);

  std::printf("floodgate stress: %s, %s, %d threads x %llu calls, seed %llu\n",
              std::string(replay::to_string(*algorithm)).c_str(), quota->to_string().c_str(), n,
              static_cast<unsigned long long>(*ops), static_cast<unsigned long long>(*seed));
  std::optional<testkit::RunReport<Call>> report;
  std::vector<std::pair<std::string, std::optional<std::string>>> checks;
  const auto bound = [&](std::string name, const std::optional<testkit::RateBoundViolation>& v) {
    checks.emplace_back(std::move(name), v ? std::optional(v->describe()) : std::nullopt);
  };
  switch (*algorithm) {
    case replay::Algorithm::Gcra: {
      GcraLimiter<ManualClock> limiter(*quota);
      report = hammer(limiter, *quota, n, *ops, *seed, *deadline);
      bound("rate bound (burst + rate x window)",
            testkit::check_rate_bound(report->history, *quota));
      const auto witness = testkit::check_arrival_time_witness(report->history, kGcraFullState,
                                                               make_gcra_rule(*quota));
      checks.emplace_back("linearizable against the GCRA rule",
                          witness ? std::optional(witness->message) : std::nullopt);
      break;
    }
    case replay::Algorithm::TokenBucket: {
      TokenBucketLimiter<ManualClock> limiter(*quota);
      report = hammer(limiter, *quota, n, *ops, *seed, *deadline);
      // The token bucket counts in floating point; its header allows 1e-3 permits.
      bound("rate bound (burst + rate x window)",
            testkit::check_rate_bound(report->history, *quota, 1e-3));
      break;
    }
    case replay::Algorithm::FixedWindow: {
      FixedWindowLimiter<ManualClock> limiter(*quota);
      report = hammer(limiter, *quota, n, *ops, *seed, *deadline);
      bound("at most the count per aligned window",
            testkit::check_aligned_window_bound(report->history, *quota));
      break;
    }
    case replay::Algorithm::SlidingLog: {
      SlidingWindowLogLimiter<ManualClock> limiter(*quota);
      report = hammer(limiter, *quota, n, *ops, *seed, *deadline);
      bound("at most the count in any window",
            testkit::check_sliding_window_bound(report->history, quota->count(), quota->period()));
      break;
    }
    case replay::Algorithm::SlidingCounter: {
      SlidingWindowCounterLimiter<ManualClock> limiter(*quota);
      report = hammer(limiter, *quota, n, *ops, *seed, *deadline);
      bound("under twice the count in any window",
            testkit::check_sliding_window_bound(report->history, 2 * quota->count() - 1,
                                                quota->period()));
      break;
    }
  }
  std::fputs(report->describe().c_str(), stdout);
  const auto admitted = report->count([](const auto& op) { return op.result->decision.allowed(); });
  std::printf("  admitted %lld of %zu calls\n", static_cast<long long>(admitted),
              report->history.size());
  bool ok = report->ok();
  if (!report->ok()) {
    std::printf("  checks skipped: the run did not complete\n");
  } else {
    for (const auto& [name, violation] : checks) {
      std::printf("  %-40s %s\n", name.c_str(),
                  violation ? ("VIOLATED: " + *violation).c_str() : "ok");
      ok = ok && !violation;
    }
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? kExitOk : kExitViolation;
}

}  // namespace floodgate::app
