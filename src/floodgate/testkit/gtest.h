// GoogleTest adapter for floodgate::testkit runs.
//
// `FLOODGATE_EXPECT_RUN_OK(report)` (and `FLOODGATE_ASSERT_RUN_OK`) turn a run's report into a
// test failure carrying the whole report, on the test's own thread. Including this header also
// installs a guard: a GoogleTest assertion made inside a worker (where an `ASSERT_*` only returns
// from the worker's lambda, and a test that waits for the worker's result could wait forever)
// fails the run at once, naming the worker and the assertion, so that workers record
// with `Worker::fail` and `Worker::expect_eq` instead. Link GoogleTest yourself.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "floodgate/testkit/runner.h"

// Fails the test (EXPECT, or ASSERT: returns from it) unless `report.ok()`, printing the report.
#define FLOODGATE_EXPECT_RUN_OK(report) EXPECT_TRUE((report).ok()) << (report).describe()
#define FLOODGATE_ASSERT_RUN_OK(report) ASSERT_TRUE((report).ok()) << (report).describe()

namespace floodgate::testkit {

// Fails the current worker's run when a GoogleTest assertion fails inside a worker thread.
class WorkerAssertionGuard : public ::testing::EmptyTestEventListener {
 public:
  // Called by GoogleTest for each assertion's result: fails the run of the worker it came from.
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    internal::fail_current_worker(
        std::string("a GoogleTest assertion failed inside the worker at ") +
        (result.file_name() != nullptr ? result.file_name() : "?") + ":" +
        std::to_string(result.line_number()) +
        " (workers must record with Worker::fail or Worker::expect_eq, not assert): " +
        result.summary());
  }
};

namespace internal {

// Installs `WorkerAssertionGuard` once per program, when this header is first included.
inline const bool kWorkerAssertionGuardInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new WorkerAssertionGuard);
  return true;
}();

}  // namespace internal
}  // namespace floodgate::testkit
