// Envoy's Rate Limit Service v3 (`envoy.service.ratelimit.v3.RateLimitService`) over gRPC,
// answered by a `Service`: requests and responses converted to and from its types, malformed
// requests refused with INVALID_ARGUMENT and a message naming the field. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "floodgate/core/result.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/service.h"
#include "floodgate/server/workers.h"

namespace floodgate::server {

// The most descriptors, and entries per descriptor, one request may carry.
inline constexpr std::size_t kMaxDescriptors = 1'000;
inline constexpr std::size_t kMaxEntries = 64;

// Returns `proto` as a `Request` whose views point into it, or an error naming what is wrong
// (an empty domain, an entry without a key, too many descriptors or entries).
Result<Request> from_proto(const envoy::service::ratelimit::v3::RateLimitRequest& proto);

// Writes `response` into `proto`: the overall code (never UNKNOWN) and one status per descriptor;
// with `headers`, also `response_headers_to_add`: `RateLimit-Policy` and `RateLimit` of the
// descriptor closest to its limit, and `Retry-After` when over the limit.
void to_proto(const Response& response, envoy::service::ratelimit::v3::RateLimitResponse& proto,
              bool headers = false);

struct AnswerOptions {
  bool headers = false;  // Add `response_headers_to_add` (see `to_proto`).
  // The longest one request may wait for a backend over all its descriptors (Envoy's filter
  // gives up after 20 ms by default); a sooner deadline of the caller's (gRPC) is kept instead.
  std::chrono::nanoseconds request_timeout = std::chrono::milliseconds(20);
};

// Answers `request` with `service` at the current time (nanoseconds since the Unix epoch),
// waiting for a backend until `deadline` at the latest, or returns an error naming what is
// malformed in it.
Result<void> answer(Service& service,
                    const envoy::service::ratelimit::v3::RateLimitRequest& request,
                    envoy::service::ratelimit::v3::RateLimitResponse& response,
                    std::chrono::steady_clock::time_point deadline, bool headers = false);

// Envoy's RLS (`ShouldRateLimit`) on gRPC's asynchronous API, answered by a `Service`. Each of
// `threads` threads polls a completion queue of its own and answers on it: reading a request,
// deciding it and writing the answer happen on one thread, without waking another. With
// `workers` (a backend that makes requests wait: Redis), each request is decided and answered on
// one of them instead, and the queue's thread goes on. Malformed requests are answered
// INVALID_ARGUMENT with what `from_proto` says.
//
// Use: `add_to(builder)` before `BuildAndStart`; `start()` once the server is built. To stop, in
// this order: `hurry()`, the server's `Shutdown`, the workers' `stop()`, then `stop()` here (the
// destructor stops it too), and only then destroy the server.
class AsyncRls {
 public:
  // `metrics`, when not null, counts each request and its latency (a wait for a worker
  // included); `workers`, when not null, must outlive `stop()`.
  AsyncRls(server::Service& service, ServiceMetrics* metrics, AnswerOptions options,
           Workers* workers, std::size_t threads);
  ~AsyncRls();
  AsyncRls(const AsyncRls&) = delete;
  AsyncRls& operator=(const AsyncRls&) = delete;

  // Registers the service and one completion queue per thread with `builder`.
  void add_to(grpc::ServerBuilder& builder);
  // Starts the threads, each with calls asked for ahead.
  void start();
  // From now on, requests not yet decided are decided without waiting for a backend (its
  // failure policy answers them), so that a stop takes no longer than the requests being
  // decided. Thread-safe.
  void hurry();
  // Shuts the queues down and joins the threads; every call not yet answered is dropped.
  void stop();

 private:
  class Call;
  // Runs each completion of `queue` until it is shut down and empty.
  static void run(grpc::ServerCompletionQueue& queue);

  server::Service& service_;
  ServiceMetrics* const metrics_;
  const AnswerOptions options_;
  Workers* const workers_;
  const std::size_t threads_;
  std::atomic<bool> hurry_{false};
  envoy::service::ratelimit::v3::RateLimitService::AsyncService async_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> running_;
};

}  // namespace floodgate::server
