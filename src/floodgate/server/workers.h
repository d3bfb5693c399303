// `Workers`: a fixed set of threads running submitted tasks in the order they were submitted. For
// work that may wait on a backend (a Redis round trip, up to a request's deadline), so that
// gRPC's few threads never wait on it: with a pool of N, N requests wait on Redis at once and
// share its pipelined round trips, and the gRPC threads go on reading and answering. Thread-safe.
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
  // Starts `threads` threads (at least one).
  explicit Workers(std::size_t threads);
  // Stops (see `stop`).
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Queues `task` to run on one of the threads. After `stop`, runs it on the caller's thread.
  void submit(std::function<void()> task);

  // Runs every task already submitted, then joins the threads. Idempotent; call it before
  // destroying what the tasks use.
  void stop();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;  // Guarded by mu_.
  bool stopping_ = false;                    // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace floodgate::server
