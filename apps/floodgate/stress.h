// What `floodgate stress` runs, apart from its flags, so that a test can run it against limiters
// broken on purpose: workers that only record, then the checks of each algorithm's bound.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/core/quota.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/replay/replayer.h"
#include "floodgate/testkit/limiter_checks.h"
#include "floodgate/testkit/runner.h"

namespace floodgate::app {

struct StressOptions {
  int threads = 2;
  std::uint64_t ops = 20'000;  // Calls per worker.
  std::uint64_t seed = 1;
  double deadline_seconds = 60;                 // The watchdog's stall timeout and deadline.
  int hang_exit_code = testkit::kHangExitCode;  // The process's status if the watchdog fires.
};

// One check and, if it failed, what it found.
struct StressCheck {
  std::string name;
  std::optional<std::string> violation;
};

struct StressOutcome {
  testkit::RunReport<testkit::LimiterCall> report;
  std::vector<StressCheck> checks;  // Empty when the run did not complete.

  // Reports whether the run completed and every check passed.
  bool ok() const {
    return report.ok() &&
           std::none_of(checks.begin(), checks.end(), [](const auto& c) { return c.violation; });
  }

  // Returns the report, the admissions, each check and PASS or FAIL, one per line.
  std::string describe() const {
    std::string out = report.describe();
    const auto admitted =
        report.count([](const auto& op) { return op.result->decision.allowed(); });
    out += "  admitted " + std::to_string(admitted) + " of " +
           std::to_string(report.history.size()) + " calls\n";
    if (!report.ok()) out += "  checks skipped: the run did not complete\n";
    for (const StressCheck& c : checks) {
      std::string name = c.name;
      name.resize(std::max<std::size_t>(name.size(), 40), ' ');
      out += "  " + name + " " + (c.violation ? "VIOLATED: " + *c.violation : "ok") + "\n";
    }
    out += ok() ? "PASS\n" : "FAIL\n";
    return out;
  }
};

// Runs `options.threads` workers against `limiter`, each making `options.ops` calls at its own
// caller instants (together about twice the quota's rate, costs 1 to 3), and returns the report.
template <typename Limiter>
testkit::RunReport<testkit::LimiterCall> hammer(Limiter& limiter, const Quota& quota,
                                                const StressOptions& options) {
  const Instant t0{std::chrono::seconds(1000)};
  // Each worker alone asks for 2/threads of the quota's rate; all of them about twice of it. A
  // long period would carry the instants past the range limiters clamp to (calls there saturate
  // and no longer test the rule), so the step shrinks, raising the load, until a worker's calls
  // (each at most 1.5 steps after the last) all fit.
  __extension__ using Wide = __int128;
  const Wide wanted = static_cast<Wide>(quota.interval().count()) * options.threads / 2;
  // Limiters clamp instants to about +-2^62 ns (core/time.h).
  constexpr Wide kLatest = (Wide{1} << 62) - 1;
  const Wide room =
      (kLatest - t0.time_since_epoch().count()) / (static_cast<Wide>(options.ops) * 3 / 2 + 2);
  const auto step = static_cast<std::int64_t>(std::max<Wide>(1, std::min(wanted, room)));
  const auto limit =
      std::chrono::milliseconds(static_cast<std::int64_t>(options.deadline_seconds * 1000));
  return testkit::run<testkit::LimiterCall>(
      {.workers = options.threads,
       .stall_timeout = limit,
       .deadline = limit,
       .seed = options.seed,
       .name = "floodgate stress",
       .hang_exit_code = options.hang_exit_code},
      [&](testkit::Worker<testkit::LimiterCall>& w) {
        const auto below = [&](std::int64_t n) {
          return static_cast<std::int64_t>(w.rng()() % static_cast<std::uint64_t>(n));
        };
        Instant at = t0 + Nanos{below(step)};
        for (std::uint64_t i = 0; i < options.ops && w.keep_going(); ++i) {
          const std::uint64_t cost = 1 + w.rng()() % std::min<std::uint64_t>(3, quota.burst());
          (void)testkit::acquire(w, limiter, at, cost);
          at += Nanos{step / 2 + below(step)};
        }
      });
}

// Returns the checks of `algorithm`'s contract on a completed run's history: its bound over
// every window of caller time, and for GCRA its rule in the order the limiter serialized calls.
inline std::vector<StressCheck> check_history(
    Algorithm algorithm, const std::vector<testkit::Operation<testkit::LimiterCall>>& h,
    const Quota& quota) {
  std::vector<StressCheck> checks;
  const auto bound = [&](std::string name, const std::optional<testkit::RateBoundViolation>& v) {
    checks.push_back({std::move(name), v ? std::optional(v->describe()) : std::nullopt});
  };
  switch (algorithm) {
    case Algorithm::Gcra: {
      bound("rate bound (burst + rate x window)", testkit::check_rate_bound(h, quota));
      const auto witness =
          testkit::check_arrival_time_witness(h, kGcraInitialState, gcra_model(quota));
      checks.push_back({"linearizable against the GCRA rule",
                        witness ? std::optional(witness->message) : std::nullopt});
      break;
    }
    case Algorithm::TokenBucket:
      // The token bucket counts in floating point; its header allows 1e-3 permits.
      bound("rate bound (burst + rate x window)", testkit::check_rate_bound(h, quota, 1e-3));
      break;
    case Algorithm::FixedWindow:
      bound("at most the count per aligned window", testkit::check_aligned_window_bound(h, quota));
      break;
    case Algorithm::SlidingLog:
      bound("at most the count in any window",
            testkit::check_sliding_window_bound(h, quota.count(), quota.period()));
      break;
    case Algorithm::SlidingCounter:
      bound("under twice the count in any window",
            testkit::check_sliding_window_bound(h, 2 * quota.count() - 1, quota.period()));
      break;
    case Algorithm::EnvoyFixedWindow:  // No single-key limiter: `stress` refuses it.
      break;
  }
  return checks;
}

// Hammers a `ScalableGcraLimiter` and checks GCRA's bound over every window of caller time. Its
// admissions are not one word's serial order (each thread admits from a lease of its own), so
// the linearizability check against the GCRA rule does not apply to it.
template <typename Limiter>
StressOutcome stress_scalable(Limiter& limiter, const Quota& quota, const StressOptions& options) {
  StressOutcome outcome{hammer(limiter, quota, options), {}};
  if (outcome.report.ok()) {
    const auto v = testkit::check_rate_bound(outcome.report.history, quota);
    outcome.checks.push_back(
        {"rate bound (burst + rate x window)", v ? std::optional(v->describe()) : std::nullopt});
  }
  return outcome;
}

// Hammers `limiter` and checks it as `algorithm`'s contract says.
template <typename Limiter>
StressOutcome stress(Limiter& limiter, Algorithm algorithm, const Quota& quota,
                     const StressOptions& options) {
  StressOutcome outcome{hammer(limiter, quota, options), {}};
  if (outcome.report.ok()) outcome.checks = check_history(algorithm, outcome.report.history, quota);
  return outcome;
}

}  // namespace floodgate::app
