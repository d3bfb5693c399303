// The concurrent runner: N workers released together from a start line, each running its
// operations and recording what they returned; every verdict made on the calling thread after
// all workers are joined; and a watchdog that turns a hang into a per-worker report and a failing
// exit instead of a silent wait.
//
// A worker never asserts: a worker that reports a failure and quits can leave a test waiting
// forever for a signal that never comes. It
// records (`Worker::step`), and when it sees something wrong it says so (`Worker::fail`,
// `Worker::expect_eq`), which stops every other worker promptly; an exception escaping a worker is
// recorded the same way. Nothing waits without a deadline: the start line has one, and a worker
// that stops making progress for `stall_timeout` (or a run that outlives `deadline`) makes the
// watchdog print one line per worker, like Go's goroutine dump, and end the process with
// `kHangExitCode`. `run_isolated` runs a whole run in a child process so that a hang fails one
// test and the rest of the suite goes on.
//
//   floodgate::GcraLimiter limiter{floodgate::Quota::per_second(10)};
//   auto report = floodgate::testkit::run<floodgate::Decision>(
//       {.workers = 64}, [&](floodgate::testkit::Worker<floodgate::Decision>& w) {
//         w.step("try_acquire_at(t0)", [&] { return limiter.try_acquire_at(t0); });
//       });
//   FLOODGATE_EXPECT_RUN_OK(report);  // floodgate/testkit/gtest.h
//   EXPECT_EQ(report.count([](const auto& op) { return op.result->allowed(); }), 10);
//
// `run` is thread-safe (runs may proceed in parallel); a `Worker` belongs to its thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace floodgate::testkit {

// The exit code of a process the watchdog ended: a run stalled or outlived its deadline.
inline constexpr int kHangExitCode = 86;

// How `run` runs its workers, and when its watchdog ends a run that hangs.
struct RunOptions {
  // The number of worker threads, each running the body once.
  int workers = 4;
  // The watchdog fires when no worker starts or finishes an operation for this long.
  std::chrono::milliseconds stall_timeout{10'000};
  // The watchdog fires when the run, start line included, takes longer than this.
  std::chrono::milliseconds deadline{120'000};
  // Workers that have not reached the start line by then are reported, and the rest released.
  std::chrono::milliseconds start_timeout{10'000};
  // Seeds each worker's `rng()`; printed in every report so that a run can be replayed.
  std::uint64_t seed = 1;
  // A name for reports, such as the test's name.
  std::string name = "run";
  // The exit code of the process when the watchdog ends it (a command-line tool that promises
  // its own status for a hang sets it).
  int hang_exit_code = kHangExitCode;
};

// Where a worker was when the run ended (or when the watchdog fired).
enum class WorkerPhase : std::uint8_t {
  NotStarted,   // Its thread has not started running yet.
  AtStartLine,  // Waiting to be released.
  Running,      // Between operations.
  InOperation,  // Inside `step`.
  Done,         // Its body returned.
  Stopped,      // Its body returned after the run was asked to stop.
  Failed,       // It reported a failure or threw.
};

// Returns "not started", "at the start line", "running", "in operation", "done", "stopped" or
// "failed".
std::string_view to_string(WorkerPhase phase) noexcept;

// One thing that went wrong: which worker, in which operation, and what.
struct Failure {
  int worker;               // The worker's index, from 0; -1 for the run itself.
  int operation;            // The index of the worker's operation, or -1 outside any.
  std::string description;  // The operation's description, if any.
  std::string message;      // What went wrong, in the words of the check or the exception.
};

// One recorded operation. `invoked` and `returned` come from one process-wide counter, so
// `a.returned < b.invoked` means that `a` finished before `b` started (real-time order).
template <typename R>
struct Operation {
  int worker;                                         // The worker that ran it.
  int index;                                          // Its index among the worker's operations.
  std::string description;                            // The description given to `step`.
  std::uint64_t invoked;                              // The stamp taken before it ran.
  std::uint64_t returned;                             // The stamp taken after it returned.
  std::chrono::steady_clock::time_point invoked_at;   // For humans; order by the stamps.
  std::chrono::steady_clock::time_point returned_at;  // For humans; order by the stamps.
  std::optional<R> result;                            // Empty if the operation threw.
  std::string error;                                  // The exception's message if it threw.
};

// Returns `value` as text: `to_string(value)` found by lookup, or `operator<<`, or "?".
template <typename T>
std::string describe_value(const T& value) {
  if constexpr (requires { std::string(to_string(value)); }) {
    return std::string(to_string(value));
  } else if constexpr (requires(std::ostream & os) { os << value; }) {
    std::ostringstream out;
    out << value;
    return out.str();
  } else {
    return "?";
  }
}

namespace internal {

// Returns the next stamp of the process-wide operation counter.
std::uint64_t next_stamp() noexcept;

// Records a failure of the calling thread's worker and stops its run, if the calling thread is a
// worker; returns whether it was. For adapters that catch a test framework's assertions.
bool fail_current_worker(std::string message);

// Returns an exception's message: `what()` for a std::exception, a note otherwise.
std::string describe_exception(const std::exception_ptr& error);

// The type-independent machinery of a run: the start line, the progress slots the watchdog
// reads, the failures, and the stop signal. Thread-safe.
class RunCore {
 public:
  explicit RunCore(RunOptions options);
  ~RunCore();
  RunCore(const RunCore&) = delete;
  RunCore& operator=(const RunCore&) = delete;

  // Runs `body(worker)` on `options.workers` threads released together, under the watchdog, and
  // returns once every thread is joined.
  void run(const std::function<void(int)>& body);

  void begin_operation(int worker, int index, std::string_view description);
  void end_operation(int worker);
  void fail(int worker, std::string message);
  std::stop_token stop_token() const noexcept;

  const RunOptions& options() const noexcept { return options_; }
  std::vector<Failure> failures() const;
  std::vector<WorkerPhase> phases() const;
  std::chrono::steady_clock::duration elapsed() const noexcept;

  // Returns the per-worker report the watchdog prints.
  std::string dump(std::string_view headline) const;

 private:
  struct State;
  RunOptions options_;
  State* state_;
};

}  // namespace internal

// A worker's handle on the run. Belongs to the worker's thread; not thread-safe.
template <typename R>
class Worker {
 public:
  // Made by `run` for each worker; not for users.
  Worker(internal::RunCore& core, int index, std::vector<Operation<R>>& operations)
      : core_(core),
        index_(index),
        operations_(operations),
        rng_(core.options().seed * std::uint64_t{0x9E3779B97F4A7C15} +
             static_cast<std::uint64_t>(index)) {}

  // Returns this worker's index, from 0.
  int index() const noexcept { return index_; }

  // Returns this worker's random generator, seeded from the run's seed and the index.
  std::mt19937_64& rng() noexcept { return rng_; }

  // Reports whether the worker should carry on: false once any worker failed or threw.
  bool keep_going() const noexcept { return !core_.stop_token().stop_requested(); }

  // Returns the run's stop token, for operations that can wait on it.
  std::stop_token stop_token() const noexcept { return core_.stop_token(); }

  // Runs `op` as this worker's next operation and records it: its description, its invoke and
  // return stamps, and its result, or the exception it threw (which then propagates, failing
  // the worker and stopping the run).
  template <typename F>
  requires std::convertible_to<std::invoke_result_t<F&>, R> R step(std::string description,
                                                                   F&& op) {
    const int index = next_operation_++;
    core_.begin_operation(index_, index, description);
    Operation<R> record{index_,
                        index,
                        std::move(description),
                        internal::next_stamp(),
                        0,
                        std::chrono::steady_clock::now(),
                        {},
                        std::nullopt,
                        {}};
    try {
      R result = op();
      record.returned = internal::next_stamp();
      record.returned_at = std::chrono::steady_clock::now();
      record.result = result;
      operations_.push_back(std::move(record));
      core_.end_operation(index_);
      return result;
    } catch (...) {
      record.error = internal::describe_exception(std::current_exception());
      record.returned = internal::next_stamp();
      record.returned_at = std::chrono::steady_clock::now();
      operations_.push_back(std::move(record));
      core_.end_operation(index_);
      throw;
    }
  }

  // Records a failure of this worker, at its current operation, and stops the run. Returns
  // normally: the worker should then return (or let `keep_going()` end its loop).
  void fail(std::string message) { core_.fail(index_, std::move(message)); }

  // Records a failure unless `condition` holds. Returns `condition`.
  bool expect(bool condition, std::string_view what) {
    if (!condition) fail(std::string(what));
    return condition;
  }

  // Records a failure, naming both values, unless `actual == expected`. Returns whether equal.
  template <typename A, typename E>
  bool expect_eq(const A& actual, const E& expected, std::string_view what) {
    if (actual == expected) return true;
    fail(std::string(what) + ": expected " + describe_value(expected) + ", got " +
         describe_value(actual));
    return false;
  }

 private:
  internal::RunCore& core_;
  int index_;
  std::vector<Operation<R>>& operations_;
  std::mt19937_64 rng_;
  int next_operation_ = 0;
};

// What a run did: the failures, every worker's last phase, and the history of operations.
template <typename R>
struct RunReport {
  RunOptions options;                             // The options the run had.
  std::vector<Failure> failures;                  // Every failure, in the order reported.
  std::vector<WorkerPhase> phases;                // Each worker's last phase, by index.
  std::vector<Operation<R>> history;              // Sorted by invoke stamp.
  std::chrono::steady_clock::duration elapsed{};  // From the run's start to the last join.

  // Reports whether no worker failed, threw, or missed the start line.
  bool ok() const noexcept { return failures.empty(); }

  // Returns how many recorded operations satisfy `pred` (operations that threw are skipped).
  template <typename Pred>
  std::int64_t count(Pred pred) const {
    return std::count_if(history.begin(), history.end(),
                         [&](const Operation<R>& op) { return op.result.has_value() && pred(op); });
  }

  // Returns the report as text for a CI log: the verdict, the seed and a replay hint, each
  // failure with its worker and operation, and every worker's last phase.
  std::string describe() const {
    std::ostringstream out;
    out << "floodgate::testkit run \"" << options.name
        << "\": " << (ok() ? "ok" : std::to_string(failures.size()) + " failure(s)") << ", "
        << options.workers << " workers, " << history.size() << " operations, "
        << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms, seed "
        << options.seed << "\n";
    for (const Failure& f : failures) {
      out << "  worker " << f.worker;
      if (f.operation >= 0) out << ", operation " << f.operation << " \"" << f.description << "\"";
      out << ": " << f.message << "\n";
    }
    if (!ok()) {
      for (std::size_t w = 0; w < phases.size(); ++w) {
        out << "  w" << w << ": " << to_string(phases[w]) << "\n";
      }
      out << "  replay: rerun with RunOptions::seed = " << options.seed << "\n";
    }
    return out.str();
  }
};

// Runs `body(worker)` on `options.workers` threads released together and returns the report
// after joining them all. `R` is what each `Worker::step` operation returns.
template <typename R, typename Body>
requires std::invocable < Body&, Worker<R>
& > RunReport<R> run(RunOptions options, Body&& body) {
  internal::RunCore core(options);
  std::vector<std::vector<Operation<R>>> logs(static_cast<std::size_t>(options.workers));
  core.run([&](int index) {
    Worker<R> worker(core, index, logs[static_cast<std::size_t>(index)]);
    body(worker);
  });
  RunReport<R> report;
  report.options = std::move(options);
  report.failures = core.failures();
  report.phases = core.phases();
  report.elapsed = core.elapsed();
  for (auto& log : logs) {
    std::move(log.begin(), log.end(), std::back_inserter(report.history));
  }
  std::sort(report.history.begin(), report.history.end(),
            [](const Operation<R>& a, const Operation<R>& b) { return a.invoked < b.invoked; });
  return report;
}

// The outcome of `run_isolated`.
struct IsolatedResult {
  bool ok;           // The child exited 0 and `fn` reported success.
  int exit_code;     // The child's exit code, kHangExitCode after a watchdog dump, or 128 + signal.
  std::string text;  // What `fn` returned, or the watchdog's dump, or why the child died.
};

// Runs `fn` in a child process (fork) and returns its verdict and text: `fn` returns whether it
// succeeded and a report. If the child hangs past `timeout`, it is killed. A hang or crash in
// the child thus fails one test while the rest of the suite goes on. Call it from a process
// with a single thread: a forked child holds only the calling thread.
IsolatedResult run_isolated(const std::function<std::pair<bool, std::string>()>& fn,
                            std::chrono::milliseconds timeout);

}  // namespace floodgate::testkit
