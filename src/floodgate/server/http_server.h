// `HttpServer`: the HTTP/1.1 endpoints of `floodgate serve` (POST /json, GET /healthcheck,
// GET /metrics), built so that no client can hold them up. One thread reads and writes every
// connection without blocking; a request reaches a handler only once it has arrived whole, so a
// client that sends its bytes slowly costs a socket and a buffer, never a thread. Each request
// has a deadline for its head and one for its body (from the first byte, not per read), the
// connections are capped (a new one takes the place of the longest idle or slowest), and the head
// and body are bounded: past any of them the client gets a status that says why (408, 413, 431,
// 503) and the connection is closed. Pipelined requests are answered in order. Handlers run on a
// pool of their lane: a slow lane for work that may wait on a backend (/json and Redis) and a fast
// lane for the health check and metrics, which therefore never queue behind the other. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"

namespace floodgate::server {

struct HttpRequest {
  std::string method;
  std::string path;  // The target without its query.
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Which pool runs a handler.
enum class HttpLane : std::uint8_t {
  Slow,  // May wait on a backend.
  Fast,  // Answers at once (health, metrics).
};

struct HttpServerOptions {
  // Past it, a new connection takes the place of the one that has waited longest for a whole
  // request (idle, or trickling it); if every one is being answered, it is answered 503.
  std::size_t max_connections = 1024;
  std::chrono::milliseconds head_timeout{5'000};   // From a request's first byte to its blank line.
  std::chrono::milliseconds body_timeout{5'000};   // From the head to the body's last byte.
  std::chrono::milliseconds idle_timeout{60'000};  // A kept-alive connection with no request.
  std::size_t max_head_bytes = 16 << 10;
  std::size_t max_body_bytes = 4 << 20;
  std::size_t slow_threads = 8;
  std::size_t fast_threads = 2;
  // Listen with SO_REUSEPORT, so that other processes that do as well share the port (the kernel
  // spreads connections among them). Off: a port another socket listens on is an error.
  bool reuse_port = false;
  // Connections the kernel queues before they are accepted (listen(2)'s backlog; the kernel caps
  // it at net.core.somaxconn).
  int backlog = 4096;
};

// Counts of what the server refused or cut short, for /metrics.
struct HttpServerStats {
  std::uint64_t connections_refused = 0;  // Over `max_connections`, every one being answered.
  std::uint64_t connections_evicted = 0;  // Closed to make room for a new one.
  std::uint64_t timeouts = 0;             // Heads or bodies not in time, and idle connections.
  std::uint64_t refused_requests = 0;     // 400, 405, 408, 411, 413, 431 before any handler.
};

// Returns `text` ("host:port", the port from 0 to 65535) as host and port, or an error quoting it.
Result<std::pair<std::string, int>> parse_host_port(const std::string& text);

// Returns an error naming the address and why, if no socket could listen on `host`:`port` now
// without SO_REUSEPORT (a socket is bound and closed at once); nothing if one could.
Result<void> try_listen(const std::string& host, int port);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options = {});
  // Stops (see `stop`).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes `method` `path` to `handler` on `lane`. Before `listen`.
  void route(std::string method, std::string path, HttpLane lane, HttpHandler handler);

  // Listens on `host`:`port` (0: a free one) and starts serving; returns the port, or an error
  // naming the address (one in use, unless both sockets reuse the port, says so).
  Result<int> listen(const std::string& host, int port);

  // Stops taking connections, lets the handlers running finish and their answers go out (1 s at
  // most), closes every connection and joins the threads. Idempotent.
  void stop();

  HttpServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::server
