#include "floodgate/redis/internal/pipeline.h"

#include <algorithm>
#include <utility>

namespace floodgate::internal {

Pipeline::Pipeline(PipelineOptions options) : options_(std::move(options)) {
  for (const auto& command : options_.on_connect) {
    const std::vector<std::string_view> args(command.begin(), command.end());
    append_command(connect_commands_, std::span<const std::string_view>(args));
  }
}

Pipeline::~Pipeline() = default;

Result<Reply> Pipeline::call(std::string_view command, Deadline deadline, std::size_t replies,
                             std::chrono::nanoseconds timeout, std::vector<Reply>* all) {
  Request request{command, replies, deadline, timeout, all, std::nullopt, false, {}};
  std::unique_lock lock(mu_);
  queue_.push_back(&request);
  while (!request.done) {
    if (!busy_) {
      lead(lock);
      continue;
    }
    if (request.wake.wait_until(lock, deadline) == std::cv_status::timeout && !request.done) {
      const auto queued = std::find(queue_.begin(), queue_.end(), &request);
      if (queued != queue_.end()) {
        queue_.erase(queued);
        // This caller may have been woken to lead: pass that on.
        if (!busy_ && !queue_.empty()) queue_.front()->wake.notify_one();
        return Error("redis " + options_.endpoint.to_string() +
                     ": timed out waiting for the connection");
      }
      // In flight: the batch's I/O ends by the earliest deadline in it, ours at the latest.
      request.wake.wait(lock, [&] { return request.done; });
    }
  }
  return std::move(*request.result);
}

PipelineStats Pipeline::stats() const {
  const std::lock_guard lock(mu_);
  return stats_;
}

void Pipeline::fail_all(std::vector<Request*>& batch, std::size_t from, const Error& error) {
  for (std::size_t i = from; i < batch.size(); ++i) batch[i]->result.emplace(error);
}

Result<void> Pipeline::ensure_connected(Deadline deadline) {
  if (connection_.is_open()) return {};
  const auto now = std::chrono::steady_clock::now();
  if (now < retry_at_) {
    return Error(
        last_connect_error_ + " (reconnecting in " +
        std::to_string(std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now).count()) +
        " ms)");
  }
  const auto connect_by = std::min(deadline, now + options_.connect_timeout);
  Result<void> opened = connection_.open(options_.endpoint, connect_by, options_.tls.get());
  if (opened && !connect_commands_.empty()) {
    opened = connection_.write(connect_commands_, deadline);
    for (std::size_t i = 0; opened && i < options_.on_connect.size(); ++i) {
      Result<Reply> reply = connection_.read(deadline);
      if (!reply) {
        opened = reply.error();
      } else if (reply->is_error()) {
        connection_.close();
        opened = Error("redis " + options_.endpoint.to_string() + ": " + options_.on_connect[i][0] +
                       " failed: " + reply->text);
      }
    }
  }
  if (!opened) {
    backoff_ = std::clamp(backoff_ * 2, options_.min_backoff, options_.max_backoff);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    last_connect_error_ = opened.error().message();
    return opened;
  }
  backoff_ = std::chrono::nanoseconds{0};
  ++new_connects_;
  return {};
}

void Pipeline::lead(std::unique_lock<std::mutex>& lock) {
  busy_ = true;
  batch_.assign(queue_.begin(), queue_.end());
  queue_.clear();
  lock.unlock();

  Deadline deadline = Deadline::max();
  buffer_.clear();
  for (const Request* r : batch_) {
    deadline = std::min(deadline, r->deadline);
    buffer_.append(r->command);
  }
  bool sent = false;
  bool broken = false;
  Result<void> connected = ensure_connected(deadline);
  // Each caller's timeout runs from here: its round trip, not its wait for the batch ahead.
  const Deadline written_at = std::chrono::steady_clock::now();
  for (const Request* r : batch_) {
    if (r->timeout < deadline - written_at) deadline = written_at + r->timeout;
  }
  if (!connected) {
    fail_all(batch_, 0, connected.error());
  } else if (Result<void> written = connection_.write(buffer_, deadline); !written) {
    fail_all(batch_, 0, written.error());
    broken = true;
  } else {
    sent = true;
    for (std::size_t i = 0; i < batch_.size() && !broken; ++i) {
      for (std::size_t n = 0; n < batch_[i]->replies; ++n) {
        Result<Reply> reply = connection_.read(deadline);
        if (!reply) {
          fail_all(batch_, i, reply.error());
          broken = true;
          break;
        }
        if (batch_[i]->all != nullptr) batch_[i]->all->push_back(*reply);
        batch_[i]->result.emplace(std::move(*reply));
      }
    }
  }
  if (broken) {
    // The next call reconnects after the shortest backoff: a broken connection is often a
    // restart that is already over.
    backoff_ = std::clamp(backoff_ * 2, options_.min_backoff, options_.max_backoff);
    retry_at_ = std::chrono::steady_clock::now();
    last_connect_error_ = "redis " + options_.endpoint.to_string() + ": connection lost";
  }

  lock.lock();
  if (sent) {
    ++stats_.batches;
    for (const Request* r : batch_) stats_.commands += r->replies;
  }
  stats_.connects += std::exchange(new_connects_, 0);
  // Wake exactly the callers whose requests are done, and the next leader. Under the lock: a
  // request lives on its caller's stack, and the caller returns once it sees `done`.
  for (Request* r : batch_) {
    r->done = true;
    r->wake.notify_one();
  }
  batch_.clear();
  busy_ = false;
  if (!queue_.empty()) queue_.front()->wake.notify_one();
}

}  // namespace floodgate::internal
