#include "floodgate/testkit/runner.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

namespace floodgate::testkit {

std::string_view to_string(WorkerPhase phase) noexcept {
  switch (phase) {
    case WorkerPhase::NotStarted:
      return "not started";
    case WorkerPhase::AtStartLine:
      return "at the start line";
    case WorkerPhase::Running:
      return "running";
    case WorkerPhase::InOperation:
      return "in operation";
    case WorkerPhase::Done:
      return "done";
    case WorkerPhase::Stopped:
      return "stopped";
    case WorkerPhase::Failed:
      return "failed";
  }
  return "?";
}

namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<std::uint64_t> stamp_counter{0};

// The run and worker index of the calling thread, when it is a worker.
thread_local RunCore* current_run = nullptr;
thread_local int current_worker = -1;

}  // namespace

bool fail_current_worker(std::string message) {
  if (current_run == nullptr) return false;
  current_run->fail(current_worker, std::move(message));
  return true;
}

std::uint64_t next_stamp() noexcept {
  // acq_rel: a stamp taken after an operation returned is ordered after everything it did, and
  // TSan sees the ordering.
  return stamp_counter.fetch_add(1, std::memory_order_acq_rel);
}

std::string describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return std::string("threw: ") + e.what();
  } catch (...) {
    return "threw an exception not derived from std::exception";
  }
}

// One worker's progress, written by the worker and read by the watchdog.
struct Slot {
  std::atomic<WorkerPhase> phase{WorkerPhase::NotStarted};
  std::atomic<int> operation{-1};
  std::atomic<std::int64_t> since_ns{0};  // When the current operation began (steady clock).
  std::mutex mu;
  std::string description;  // Guarded by mu: the current operation's description.
};

struct RunCore::State {
  explicit State(int workers) : slots(static_cast<std::size_t>(workers)) {}

  std::vector<Slot> slots;
  std::atomic<std::uint64_t> progress{0};  // Bumped by every phase change and operation.
  std::stop_source stop;
  Clock::time_point start = Clock::now();
  std::atomic<Clock::rep> elapsed{0};

  std::mutex mu;  // Guards everything below.
  std::condition_variable cv;
  int arrived = 0;
  bool released = false;
  bool finished = false;  // Every worker is joined: the watchdog may leave.
  std::vector<Failure> failures;

  void set_phase(int worker, WorkerPhase phase) {
    slots[static_cast<std::size_t>(worker)].phase.store(phase, std::memory_order_release);
    progress.fetch_add(1, std::memory_order_relaxed);
  }
};

RunCore::RunCore(RunOptions options)
    : options_(std::move(options)), state_(new State(options_.workers)) {}

RunCore::~RunCore() { delete state_; }

std::stop_token RunCore::stop_token() const noexcept { return state_->stop.get_token(); }

void RunCore::begin_operation(int worker, int index, std::string_view description) {
  Slot& slot = state_->slots[static_cast<std::size_t>(worker)];
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    slot.description.assign(description);
  }
  slot.operation.store(index, std::memory_order_relaxed);
  slot.since_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  state_->set_phase(worker, WorkerPhase::InOperation);
}

void RunCore::end_operation(int worker) { state_->set_phase(worker, WorkerPhase::Running); }

void RunCore::fail(int worker, std::string message) {
  Failure failure{worker, -1, {}, std::move(message)};
  if (worker >= 0) {
    Slot& slot = state_->slots[static_cast<std::size_t>(worker)];
    failure.operation = slot.operation.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(slot.mu);
    failure.description = slot.description;
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->failures.push_back(std::move(failure));
  }
  if (worker >= 0) state_->set_phase(worker, WorkerPhase::Failed);
  state_->stop.request_stop();
  state_->cv.notify_all();  // Releases a start line that waits for nobody any more.
}

std::vector<Failure> RunCore::failures() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->failures;
}

std::vector<WorkerPhase> RunCore::phases() const {
  std::vector<WorkerPhase> out;
  for (const Slot& slot : state_->slots) out.push_back(slot.phase.load(std::memory_order_acquire));
  return out;
}

Clock::duration RunCore::elapsed() const noexcept {
  return Clock::duration(state_->elapsed.load(std::memory_order_relaxed));
}

std::string RunCore::dump(std::string_view headline) const {
  const Clock::time_point now = Clock::now();
  std::string out = "floodgate::testkit watchdog: run \"" + options_.name + "\" " +
                    std::string(headline) + " (seed " + std::to_string(options_.seed) + ")\n";
  for (std::size_t w = 0; w < state_->slots.size(); ++w) {
    Slot& slot = state_->slots[w];
    const WorkerPhase phase = slot.phase.load(std::memory_order_acquire);
    out += "  w" + std::to_string(w) + ": " + std::string(to_string(phase));
    if (phase == WorkerPhase::InOperation) {
      std::string description;
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        description = slot.description;
      }
      const auto since = Clock::time_point(Clock::duration(slot.since_ns.load()));
      out += " " + std::to_string(slot.operation.load()) + " \"" + description + "\" for " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count()) +
             " ms";
    }
    out += "\n";
  }
  return out;
}

void RunCore::run(const std::function<void(int)>& body) {
  State& s = *state_;
  const Clock::time_point deadline = s.start + options_.deadline;

  // The watchdog: polls the progress counter and ends the process if it stalls.
  std::thread watchdog([this, &s, deadline] {
    const auto poll = std::clamp<Clock::duration>(
        options_.stall_timeout / 10, std::chrono::milliseconds(1), std::chrono::milliseconds(50));
    std::uint64_t seen = s.progress.load();
    Clock::time_point last_progress = Clock::now();
    std::unique_lock<std::mutex> lock(s.mu);
    while (!s.finished) {
      s.cv.wait_for(lock, poll);
      if (s.finished) break;
      const Clock::time_point now = Clock::now();
      const std::uint64_t progress = s.progress.load();
      if (progress != seen) {
        seen = progress;
        last_progress = now;
      }
      std::string why;
      if (now > deadline) {
        why = "outlived its deadline of " + std::to_string(options_.deadline.count()) + " ms";
      } else if (now - last_progress > options_.stall_timeout) {
        why = "made no progress for " + std::to_string(options_.stall_timeout.count()) + " ms";
      } else {
        continue;
      }
      lock.unlock();
      const std::string report = dump(why);
      std::fputs(report.c_str(), stderr);
      std::fflush(stderr);
      // Threads cannot be killed, and unwinding would wait on them: end the process.
      std::_Exit(options_.hang_exit_code);
    }
  });

  std::vector<std::thread> threads;
  threads.reserve(s.slots.size());
  for (int w = 0; w < options_.workers; ++w) {
    try {
      threads.emplace_back([this, &s, &body, w] {
        s.set_phase(w, WorkerPhase::AtStartLine);
        {
          std::unique_lock<std::mutex> lock(s.mu);
          ++s.arrived;
          s.cv.notify_all();
          // Released by the main thread, or given up on when the run stops.
          s.cv.wait(lock, [&s] { return s.released || s.stop.stop_requested(); });
          if (!s.released) {
            lock.unlock();
            s.set_phase(w, WorkerPhase::Stopped);
            return;
          }
        }
        s.set_phase(w, WorkerPhase::Running);
        current_run = this;
        current_worker = w;
        try {
          body(w);
          if (s.slots[static_cast<std::size_t>(w)].phase.load() != WorkerPhase::Failed) {
            s.set_phase(w, s.stop.stop_requested() ? WorkerPhase::Stopped : WorkerPhase::Done);
          }
        } catch (...) {
          fail(w, describe_exception(std::current_exception()));
        }
        current_run = nullptr;
        current_worker = -1;
      });
    } catch (const std::exception& e) {
      fail(-1, "could not start worker " + std::to_string(w) + ": " + e.what());
      break;
    }
  }

  // The start line: release when every started worker has arrived, or at the start timeout.
  {
    std::unique_lock<std::mutex> lock(s.mu);
    const int expected = static_cast<int>(threads.size());
    if (!s.cv.wait_until(lock, Clock::now() + options_.start_timeout,
                         [&] { return s.arrived == expected || s.stop.stop_requested(); })) {
      const int missing = expected - s.arrived;
      lock.unlock();
      fail(-1, std::to_string(missing) + " worker(s) did not reach the start line within " +
                   std::to_string(options_.start_timeout.count()) + " ms");
      lock.lock();
    }
    s.released = !s.stop.stop_requested();
    s.cv.notify_all();
  }

  // Joining may wait on a hung worker; the watchdog bounds that wait.
  for (std::thread& t : threads) t.join();
  s.elapsed.store((Clock::now() - s.start).count(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.finished = true;
  }
  s.cv.notify_all();
  watchdog.join();
}

}  // namespace internal

IsolatedResult run_isolated(const std::function<std::pair<bool, std::string>()>& fn,
                            std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe(fds) != 0) return {false, -1, "run_isolated: pipe() failed"};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {false, -1, "run_isolated: fork() failed"};
  }
  if (pid == 0) {
    // The child: the watchdog's dump goes to stderr, which now writes into the pipe too.
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    auto [ok, text] = fn();
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = write(fds[1], text.data() + written, text.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    std::_Exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0) continue;  // EINTR
    if (ready == 0) {
      timed_out = true;
      break;
    }
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // EOF: the child is done.
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out) {
    return {false, 128 + SIGKILL,
            text + "run_isolated: the child outlived " + std::to_string(timeout.count()) +
                " ms and was killed\n"};
  }
  if (WIFSIGNALED(status)) {
    return {
        false, 128 + WTERMSIG(status),
        text + "run_isolated: the child died of signal " + std::to_string(WTERMSIG(status)) + "\n"};
  }
  const int code = WEXITSTATUS(status);
  return {code == 0, code, text};
}

}  // namespace floodgate::testkit
