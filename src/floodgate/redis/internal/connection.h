// `Connection`: one socket to one Redis server (TCP or a Unix socket), with every operation bound
// by a deadline, checked while bytes keep arriving too. Replies are read by a `ReplyReader`,
// which bounds them (`kMaxReplyBytes`). Not part of the public API. Not thread-safe: `Pipeline`
// gives one thread at a time the connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/reply_reader.h"
#include "floodgate/redis/internal/resp.h"

namespace floodgate::internal {

using Deadline = std::chrono::steady_clock::time_point;

// Where a Redis server listens: `host:port`, or a Unix socket when `path` is not empty.
struct Endpoint {
  std::string host;
  int port = 6379;
  std::string path;

  // Returns "host:port" or "unix:path".
  std::string to_string() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

class TlsContext;
class TlsSession;

// Waits until `fd` is ready for `events` (poll's) or `deadline` passes. Returns 1 when ready, 0
// on timeout, -1 on error (errno set).
int wait_for_socket(int fd, short events, Deadline deadline);

class Connection {
 public:
  Connection();
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to `endpoint`, closing any previous socket first, then with `tls` runs the TLS
  // handshake, all by `deadline`. Host names are resolved with getaddrinfo, which the deadline
  // cannot bound; numeric addresses never block.
  Result<void> open(const Endpoint& endpoint, Deadline deadline, const TlsContext* tls = nullptr);

  // Closes the socket and drops any bytes read but not parsed. Safe to call when closed.
  void close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }

  // Writes all of `bytes` by `deadline`. On failure the connection is closed: a partly written
  // command leaves the stream in an unknown state.
  Result<void> write(std::string_view bytes, Deadline deadline);

  // Returns the next reply, read by `deadline`. On failure (timeout, closed by the server, a
  // protocol error, a reply past the reader's bounds) the connection is closed: the reply
  // stream is no longer in step.
  Result<Reply> read(Deadline deadline);

 private:
  Error fail(std::string_view what, int error_number);

  int fd_ = -1;
  std::unique_ptr<TlsSession> tls_;  // With TLS: reads and writes go through it.
  ReplyReader reader_;
  Endpoint endpoint_;
};

}  // namespace floodgate::internal
