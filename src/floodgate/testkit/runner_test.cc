#include "floodgate/testkit/runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>

#include "floodgate/core/decision.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/testkit/gtest.h"

namespace floodgate::testkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Blocks until the run is asked to stop, or a minute passes: what a worker of the origin story
// did after its call, waiting for the others. If stopping did not propagate, the run would take
// the minute and the workers would end `Done`, not `Stopped`.
void wait_for_stop(const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_until(lock, stop, std::chrono::steady_clock::now() + std::chrono::minutes(1),
                [] { return false; });
}

TEST(RunnerTest, RecordsEveryOperationWithOrderedStamps) {
  std::atomic<int> counter{0};
  const auto report = run<int>({.workers = 8, .name = "counter"}, [&](Worker<int>& w) {
    for (int i = 0; i < 100 && w.keep_going(); ++i) {
      w.step("fetch_add", [&] { return counter.fetch_add(1); });
    }
  });
  FLOODGATE_EXPECT_RUN_OK(report);
  ASSERT_EQ(report.history.size(), 800u);
  std::vector<int> next(8, 0);
  std::vector<bool> seen(800, false);
  for (const Operation<int>& op : report.history) {
    EXPECT_LT(op.invoked, op.returned);
    EXPECT_EQ(op.index, next[static_cast<std::size_t>(op.worker)]++);
    ASSERT_TRUE(op.result.has_value());
    seen[static_cast<std::size_t>(*op.result)] = true;  // Each value returned exactly once.
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 800);
  for (const WorkerPhase phase : report.phases) EXPECT_EQ(phase, WorkerPhase::Done);
}

TEST(RunnerTest, OriginStoryFailsFastNamingTheWorkerAndTheOperation) {
  // The origin story's test, in C++: 100 calls, each with its own expected answer. Here the
  // "limiter" is scripted to surprise worker 37; everyone else then waits, as the story's test
  // did, and must be released by the failure instead of hanging.
  const auto report =
      run<Verdict>({.workers = 100, .name = "origin story"}, [&](Worker<Verdict>& w) {
        const Verdict got = w.step("try_acquire_at(t0)", [&] {
          return w.index() == 37 ? Verdict::Denied : Verdict::Allowed;
        });
        if (!w.expect_eq(got, Verdict::Allowed, "try_acquire_at(t0)")) return;
        wait_for_stop(w.stop_token());
      });
  ASSERT_FALSE(report.ok());
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].worker, 37);
  EXPECT_EQ(report.failures[0].operation, 0);
  EXPECT_EQ(report.failures[0].description, "try_acquire_at(t0)");
  EXPECT_EQ(report.failures[0].message, "try_acquire_at(t0): expected Allowed, got Denied");
  for (int w = 0; w < 100; ++w) {
    EXPECT_EQ(report.phases[static_cast<std::size_t>(w)],
              w == 37 ? WorkerPhase::Failed : WorkerPhase::Stopped)
        << "worker " << w;
  }
  const std::string text = report.describe();
  EXPECT_NE(text.find("worker 37, operation 0 \"try_acquire_at(t0)\": try_acquire_at(t0): "
                      "expected Allowed, got Denied"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("replay: rerun with RunOptions::seed = 1"), std::string::npos);
}

TEST(RunnerTest, AThrowingWorkerIsRecordedAndStopsTheOthers) {
  const auto report = run<int>({.workers = 4, .name = "thrower"}, [&](Worker<int>& w) {
    for (int i = 0; w.keep_going(); ++i) {
      w.step("op " + std::to_string(i), [&] {
        if (w.index() == 3 && i == 5) throw std::runtime_error("boom");
        return i;
      });
      if (w.index() != 3 && i >= 1000) wait_for_stop(w.stop_token());
    }
  });
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].worker, 3);
  EXPECT_EQ(report.failures[0].operation, 5);
  EXPECT_EQ(report.failures[0].description, "op 5");
  EXPECT_EQ(report.failures[0].message, "threw: boom");
  const auto thrown = std::find_if(report.history.begin(), report.history.end(),
                                   [](const Operation<int>& op) { return !op.error.empty(); });
  ASSERT_NE(thrown, report.history.end());
  EXPECT_EQ(thrown->worker, 3);
  EXPECT_FALSE(thrown->result.has_value());
  EXPECT_EQ(report.phases[3], WorkerPhase::Failed);
  EXPECT_EQ(report.phases[0], WorkerPhase::Stopped);
}

TEST(RunnerTest, GuardTurnsAGoogleTestAssertionInAWorkerIntoARunFailure) {
  // Feeds the guard the failure a worker's EXPECT_* would report, without failing this test.
  const auto report = run<int>({.workers = 3, .name = "assert in worker"}, [&](Worker<int>& w) {
    if (w.index() == 1) {
      WorkerAssertionGuard guard;
      guard.OnTestPartResult(::testing::TestPartResult(::testing::TestPartResult::kFatalFailure,
                                                       "my_test.cc", 42, "Expected: 10 admitted"));
      return;
    }
    wait_for_stop(w.stop_token());
  });
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].worker, 1);
  EXPECT_NE(report.failures[0].message.find("assertion failed inside the worker at my_test.cc:42"),
            std::string::npos)
      << report.failures[0].message;
  EXPECT_EQ(report.phases[0], WorkerPhase::Stopped);
}

TEST(RunnerTest, TheGuardIgnoresAssertionsOutsideWorkers) {
  EXPECT_FALSE(internal::fail_current_worker("not a worker"));
}

TEST(RunnerTest, DescribesDecisionsAndStreamableValues) {
  EXPECT_EQ(describe_value(42), "42");
  EXPECT_EQ(describe_value(Verdict::Denied), "Denied");
  struct Opaque {};
  EXPECT_EQ(describe_value(Opaque{}), "?");
}

class WatchdogDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(WatchdogDeathTest, AWorkerBlockedForeverProducesTheDumpAndAFailingExit) {
  auto blocked = [] {
    (void)run<int>({.workers = 4, .stall_timeout = milliseconds(300), .name = "blocked"},
                   [](Worker<int>& w) {
                     if (w.index() != 2) return;
                     w.step("wait for a signal nobody sends", [] {
                       std::mutex mu;
                       std::condition_variable cv;
                       std::unique_lock<std::mutex> lock(mu);
                       cv.wait(lock, [] { return false; });  // Deliberately no deadline.
                       return 0;
                     });
                   });
  };
  EXPECT_EXIT(blocked(), ::testing::ExitedWithCode(kHangExitCode),
              "run \"blocked\" made no progress for 300 ms(.|\n)*w0: done(.|\n)*"
              "w2: in operation 0 \"wait for a signal nobody sends\" for [0-9]+ ms");
}

TEST_F(WatchdogDeathTest, ALockOrderDeadlockProducesTheDumpAndAFailingExit) {
  auto deadlock = [] {
    std::mutex a;
    std::mutex b;
    std::atomic<int> holding{0};
    (void)run<int>({.workers = 2, .stall_timeout = milliseconds(300), .name = "deadlock"},
                   [&](Worker<int>& w) {
                     std::mutex& first = w.index() == 0 ? a : b;
                     std::mutex& second = w.index() == 0 ? b : a;
                     w.step(w.index() == 0 ? "lock a then b" : "lock b then a", [&] {
                       std::lock_guard<std::mutex> one(first);
                       holding.fetch_add(1);
                       while (holding.load() < 2) std::this_thread::yield();
                       std::lock_guard<std::mutex> two(second);
                       return 0;
                     });
                   });
  };
  EXPECT_EXIT(deadlock(), ::testing::ExitedWithCode(kHangExitCode),
              "w0: in operation 0 \"lock a then b\"(.|\n)*w1: in operation 0 \"lock b then a\"");
}

TEST_F(WatchdogDeathTest, ARunPastItsDeadlineIsEndedEvenWhileItProgresses) {
  auto endless = [] {
    (void)run<int>({.workers = 1, .deadline = milliseconds(300), .name = "endless"},
                   [](Worker<int>& w) {
                     for (int i = 0;; ++i) w.step("spin", [i] { return i; });
                   });
  };
  EXPECT_EXIT(endless(), ::testing::ExitedWithCode(kHangExitCode),
              "run \"endless\" outlived its deadline of 300 ms");
}

TEST(RunIsolatedTest, AHangInAChildFailsOneTestAndTheSuiteGoesOn) {
  const IsolatedResult result = run_isolated(
      [] {
        const auto report =
            run<int>({.workers = 2, .stall_timeout = milliseconds(200), .name = "isolated"},
                     [](Worker<int>& w) {
                       w.step("sleep forever", [] {
                         std::mutex mu;
                         std::condition_variable cv;
                         std::unique_lock<std::mutex> lock(mu);
                         cv.wait(lock, [] { return false; });
                         return 0;
                       });
                     });
        return std::pair{report.ok(), report.describe()};
      },
      seconds(60));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.exit_code, kHangExitCode);
  EXPECT_NE(result.text.find("w1: in operation 0 \"sleep forever\""), std::string::npos)
      << result.text;
}

TEST(RunIsolatedTest, ReturnsTheChildsVerdictAndReport) {
  const IsolatedResult passed = run_isolated(
      [] {
        return std::pair{true, std::string("all good\n")};
      },
      seconds(60));
  EXPECT_TRUE(passed.ok);
  EXPECT_EQ(passed.exit_code, 0);
  EXPECT_EQ(passed.text, "all good\n");
  const IsolatedResult failed = run_isolated(
      [] {
        return std::pair{false, std::string("bad\n")};
      },
      seconds(60));
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.exit_code, 1);
}

}  // namespace
}  // namespace floodgate::testkit
