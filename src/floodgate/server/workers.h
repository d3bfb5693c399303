// `Workers`: threads running submitted tasks in the order they were submitted, started as tasks
// need them, up to a maximum. For work that may wait on a backend (a Redis round trip, up to a
// request's deadline), so that gRPC's few threads never wait on it: every task starts at once
// while fewer than the maximum run (a thread is started for a task that finds none idle), so a
// request never waits behind others for a thread, and those waiting on Redis at once share its
// pipelined round trips. Threads, once started, stay until `stop`. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace floodgate::server {

class Workers {
 public:
  // Runs tasks on at most `max_threads` threads (at least one), none started yet.
  explicit Workers(std::size_t max_threads);
  // Stops (see `stop`).
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Queues `task` to run on one of the threads. After `stop`, runs it on the caller's thread.
  void submit(std::function<void()> task);

  // Runs every task already submitted, then joins the threads. Idempotent; call it before
  // destroying what the tasks use.
  void stop();

  // Returns how many threads have been started, and how many of them wait for a task.
  std::size_t threads() const;
  std::size_t idle() const;

 private:
  void run();

  const std::size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;  // Guarded by mu_.
  bool stopping_ = false;                    // Guarded by mu_.
  std::size_t idle_ = 0;                     // Guarded by mu_: threads waiting for a task.
  std::vector<std::thread> threads_;         // Guarded by mu_ until stopping_.
};

}  // namespace floodgate::server
