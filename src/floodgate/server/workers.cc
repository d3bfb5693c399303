#include "floodgate/server/workers.h"

#include <algorithm>
#include <utility>

namespace floodgate::server {

Workers::Workers(std::size_t max_threads) : max_threads_(std::max<std::size_t>(max_threads, 1)) {}

Workers::~Workers() { stop(); }

void Workers::stop() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  // No thread is started once `stopping_` is set: the vector is this thread's now.
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::size_t Workers::threads() const {
  const std::lock_guard lock(mu_);
  return threads_.size();
}

std::size_t Workers::idle() const {
  const std::lock_guard lock(mu_);
  return idle_;
}

void Workers::submit(std::function<void()> task) {
  {
    const std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      // Every queued task has an idle thread to take it, or one is started for it.
      if (tasks_.size() > idle_ && threads_.size() < max_threads_) {
        threads_.emplace_back([this] { run(); });
      } else {
        ready_.notify_one();
      }
      return;
    }
  }
  task();  // No thread takes it any more.
}

void Workers::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // Stopping, and nothing is left to run.
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace floodgate::server
