// `Pipeline`: one connection to one Redis server shared by any number of threads, whose
// concurrent commands are written together and their replies read together (automatic
// pipelining). Not part of the public API. Thread-safe.
//
// No thread runs in the background. A caller queues its command; if no other caller is doing
// I/O on the connection, it takes every queued command, writes them in one write, reads their
// replies in order, hands each to its caller and wakes them and the first caller still queued,
// who leads the next batch; otherwise it waits, and while it waits its command joins the next
// batch. A batch's I/O is bound by the earliest limit in it (each caller's deadline, and its
// timeout counted from the batch's write), so every caller has its answer (a reply or an error)
// by its own deadline, and a timeout measures Redis's round trip, not the wait for the batch
// ahead.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/connection.h"
#include "floodgate/redis/internal/resp.h"

namespace floodgate::internal {

struct PipelineOptions {
  Endpoint endpoint;
  std::chrono::nanoseconds connect_timeout = std::chrono::milliseconds(5);
  // After a failed connect or a broken connection, calls fail at once until the backoff has
  // passed; it doubles after each failure up to `max_backoff`, and resets on success.
  std::chrono::nanoseconds min_backoff = std::chrono::milliseconds(10);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(1);
  // Commands sent after each connect, before any caller's (AUTH, SELECT); an error reply to one
  // fails the connect.
  std::vector<std::vector<std::string>> on_connect;
  // TLS on every connection (rediss://); null: none.
  std::shared_ptr<const TlsContext> tls;
};

// Counters; each exact, together not a snapshot.
struct PipelineStats {
  std::uint64_t batches = 0;   // Round trips: one write of queued commands and their replies.
  std::uint64_t commands = 0;  // Commands sent.
  std::uint64_t connects = 0;  // Successful connects.
};

class Pipeline {
 public:
  explicit Pipeline(PipelineOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Sends `command` (`replies` RESP commands, as `append_command` writes them, sent together) and
  // returns the last one's reply, or an error if the connection fails, `deadline` passes, or
  // `timeout` passes after the write that sends it, first. An error reply from Redis is a reply,
  // not an error. `all`, if given, receives every reply, in order.
  Result<Reply> call(std::string_view command, Deadline deadline, std::size_t replies = 1,
                     std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max(),
                     std::vector<Reply>* all = nullptr);

  PipelineStats stats() const;

 private:
  struct Request {
    std::string_view command;
    std::size_t replies;
    Deadline deadline;
    std::chrono::nanoseconds timeout;  // From the batch's write.
    std::vector<Reply>* all;           // Every reply, if not null.
    std::optional<Result<Reply>> result;
    bool done = false;
    std::condition_variable wake;  // Signalled when done, or when the caller is to lead.
  };

  // Runs one batch: the caller holds `lock`, which is released for the I/O and held again on
  // return.
  void lead(std::unique_lock<std::mutex>& lock);
  // Connects if needed; requires `busy_`.
  Result<void> ensure_connected(Deadline deadline);
  // Fails every request in `batch` with `error`.
  static void fail_all(std::vector<Request*>& batch, std::size_t from, const Error& error);

  const PipelineOptions options_;
  std::string connect_commands_;  // `options_.on_connect`, formatted.

  mutable std::mutex mu_;
  std::deque<Request*> queue_;  // Guarded by mu_.
  bool busy_ = false;           // Guarded by mu_: a caller is doing I/O.
  PipelineStats stats_;         // Guarded by mu_.

  // Owned by the caller that set `busy_`.
  Connection connection_;
  std::string buffer_;
  std::vector<Request*> batch_;
  Deadline retry_at_{};
  std::chrono::nanoseconds backoff_{0};
  std::string last_connect_error_;
  std::uint64_t new_connects_ = 0;  // Not yet added to `stats_`.
};

}  // namespace floodgate::internal
