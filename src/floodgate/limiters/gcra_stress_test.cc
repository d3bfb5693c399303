// Many threads against one `GcraLimiter`, checked the origin story's way: workers only record;
// the test thread joins them all and then checks order-free invariants, and the order the limiter
// itself chose. No wait is without a deadline and no worker asserts.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/limiters/gcra.h"
#include "floodgate/testkit/rate_bound.h"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How long a worker waits at the start line before giving up and recording that it did.
constexpr auto kStartDeadline = seconds(30);

struct Call {
  Instant at;
  std::uint64_t cost;
  Verdict verdict;
  Nanos reset_after;
};

struct WorkerLog {
  std::vector<Call> calls;
  bool missed_start = false;
};

// Runs `work(worker_index, log)` on `threads` threads released together. A worker that is not
// released within the deadline records that and returns instead of waiting forever. Returns the
// logs after every worker has been joined.
template <typename Work>
std::vector<WorkerLog> run_workers(int threads, Work work) {
  std::vector<WorkerLog> logs(static_cast<std::size_t>(threads));
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  workers.reserve(logs.size());
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      WorkerLog& log = logs[static_cast<std::size_t>(w)];
      const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
      while (!go.load(std::memory_order_acquire)) {
        if (std::chrono::steady_clock::now() > deadline) {
          log.missed_start = true;
          return;
        }
        std::this_thread::yield();
      }
      work(w, log);
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& t : workers) t.join();
  return logs;
}

std::vector<Call> merged(const std::vector<WorkerLog>& logs) {
  std::vector<Call> all;
  for (const WorkerLog& log : logs) all.insert(all.end(), log.calls.begin(), log.calls.end());
  return all;
}

int missed_starts(const std::vector<WorkerLog>& logs) {
  return static_cast<int>(
      std::count_if(logs.begin(), logs.end(), [](const WorkerLog& l) { return l.missed_start; }));
}

// Checks that the admitted calls, ordered by the state each left behind, form the exact chain
// the limiter's compare-and-swap makes: each state is max(previous state, its instant) + its
// charge, starting from full, and the last is the limiter's final state. A lost update (two
// admissions from one state) or a double count breaks the chain. Returns "" or the first break.
std::string check_admission_chain(std::vector<Call> calls, const GcraLimiter<ManualClock>& limiter,
                                  Instant probe) {
  std::erase_if(calls, [](const Call& c) { return c.verdict != Verdict::Allowed || c.cost == 0; });
  const std::int64_t interval = limiter.quota().interval().count();
  auto state_after = [](const Call& c) {
    return (c.at + c.reset_after).time_since_epoch().count();
  };
  std::sort(calls.begin(), calls.end(),
            [&](const Call& a, const Call& b) { return state_after(a) < state_after(b); });
  std::int64_t state = kGcraFullState;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const Call& c = calls[i];
    const std::int64_t want = std::max(state, c.at.time_since_epoch().count()) +
                              static_cast<std::int64_t>(c.cost) * interval;
    if (state_after(c) != want) {
      return "admission " + std::to_string(i) + " (cost " + std::to_string(c.cost) + " at " +
             std::to_string(c.at.time_since_epoch().count()) + "ns) left state " +
             std::to_string(state_after(c)) + ", expected " + std::to_string(want);
    }
    state = want;
  }
  // The limiter's final state, read back through a cost-0 peek (which reports the state as it
  // is) at an instant no later than any call.
  const std::int64_t final_state =
      (probe + limiter.peek_at(probe, 0).reset_after()).time_since_epoch().count();
  if (!calls.empty() && final_state != state) {
    return "final state " + std::to_string(final_state) + " differs from the chain's " +
           std::to_string(state);
  }
  return "";
}

TEST(GcraStressTest, SixtyFourCallsAtOneInstantAdmitExactlyTheBurst) {
  constexpr int kThreads = 64;
  constexpr int kRepetitions = 100;
  const Instant t0{seconds(1)};
  int wrong_rounds = 0;
  std::string first_wrong;
  for (int round = 0; round < kRepetitions; ++round) {
    GcraLimiter<ManualClock> limiter{Quota::per_second(10)};
    const auto logs = run_workers(kThreads, [&](int, WorkerLog& log) {
      const Decision d = limiter.try_acquire_at(t0);
      log.calls.push_back({t0, 1, d.verdict(), d.reset_after()});
    });
    ASSERT_EQ(missed_starts(logs), 0) << "round " << round;
    const std::vector<Call> calls = merged(logs);
    const auto admitted = std::count_if(
        calls.begin(), calls.end(), [](const Call& c) { return c.verdict == Verdict::Allowed; });
    const std::string chain = check_admission_chain(calls, limiter, t0);
    if ((admitted != 10 || !chain.empty()) && wrong_rounds++ == 0) {
      first_wrong = "round " + std::to_string(round) + ": admitted " + std::to_string(admitted) +
                    " of " + std::to_string(calls.size()) + " " + chain;
    }
  }
  EXPECT_EQ(wrong_rounds, 0) << first_wrong;
}

TEST(GcraStressTest, MixedCostsAtOneInstantLoseAndDoubleCountNothing) {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 200;
  const Instant t0{seconds(1)};
  GcraLimiter<ManualClock> limiter{Quota::per_second(1000)};
  const auto logs = run_workers(kThreads, [&](int w, WorkerLog& log) {
    for (int i = 0; i < kCallsPerThread; ++i) {
      const auto cost = static_cast<std::uint64_t>(1 + (w + i) % 5);
      const Decision d = limiter.try_acquire_at(t0, cost);
      log.calls.push_back({t0, cost, d.verdict(), d.reset_after()});
    }
  });
  ASSERT_EQ(missed_starts(logs), 0);
  std::uint64_t admitted = 0;
  for (const Call& c : merged(logs)) admitted += c.verdict == Verdict::Allowed ? c.cost : 0;
  // Everything admitted plus what remains is exactly the burst, and the burst was drained far
  // enough that no cost from 1 to 5 fits any more.
  EXPECT_EQ(admitted + limiter.peek_at(t0, 0).remaining(), 1000u);
  EXPECT_LT(limiter.peek_at(t0, 0).remaining(), 5u);
  EXPECT_EQ(check_admission_chain(merged(logs), limiter, t0), "");
}

TEST(GcraStressTest, RandomInstantsRespectTheRateBoundInEveryWindow) {
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 20'000;
  const Quota quota = Quota::per_second(1000).with_burst(25);
  GcraLimiter<ManualClock> limiter{quota};
  // A shared "true" clock that workers advance, each reading it possibly stale: the callers of
  // golang/go#71360, who read time before reaching the limiter.
  std::atomic<std::int64_t> true_now{1'000'000'000};
  const auto logs = run_workers(kThreads, [&](int w, WorkerLog& log) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(w) * 7919 + 1);
    log.calls.reserve(kCallsPerThread);
    for (int i = 0; i < kCallsPerThread; ++i) {
      const std::int64_t now =
          true_now.fetch_add(static_cast<std::int64_t>(rng() % 400'000), std::memory_order_relaxed);
      const Instant seen{Nanos{now - static_cast<std::int64_t>(rng() % 20'000'000)}};
      const std::uint64_t cost = 1 + rng() % 4;
      const Decision d = limiter.try_acquire_at(seen, cost);
      log.calls.push_back({seen, cost, d.verdict(), d.reset_after()});
    }
  });
  ASSERT_EQ(missed_starts(logs), 0);
  const std::vector<Call> calls = merged(logs);
  std::vector<testkit::Admission> admitted;
  for (const Call& c : calls) {
    if (c.verdict == Verdict::Allowed) admitted.push_back({c.at, c.cost});
  }
  // Sanity: the workload really exercised both answers.
  ASSERT_GT(admitted.size(), 1000u);
  ASSERT_LT(admitted.size(), calls.size());
  const auto violation = testkit::find_rate_bound_violation(admitted, quota);
  EXPECT_FALSE(violation.has_value()) << violation->describe();
  const auto earliest = std::min_element(calls.begin(), calls.end(),
                                         [](const Call& a, const Call& b) { return a.at < b.at; });
  EXPECT_EQ(check_admission_chain(calls, limiter, earliest->at), "");
}

}  // namespace
}  // namespace floodgate
