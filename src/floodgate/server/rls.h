// Envoy's Rate Limit Service v3 (`envoy.service.ratelimit.v3.RateLimitService`) over gRPC,
// answered by a `Service`: requests and responses converted to and from its types, malformed
// requests refused with INVALID_ARGUMENT and a message naming the field. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
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
// (an empty domain, no descriptors, an entry without a key, too many descriptors or entries). A
// descriptor without entries is no error: no rule matches it, as in envoyproxy/ratelimit.
Result<Request> from_proto(const envoy::service::ratelimit::v3::RateLimitRequest& proto);

// Which headers an answer asks Envoy to add to the client's response.
enum class ResponseHeaders : std::uint8_t {
  None,
  // envoyproxy/ratelimit's (LIMIT_RESPONSE_HEADERS_ENABLED): `RateLimit-Limit`,
  // `RateLimit-Remaining` and `RateLimit-Reset` (whole seconds) of one descriptor: the last over
  // the limit that is not in quota mode, else the one with the least remaining (the first of
  // equals); none when no descriptor has a limit.
  Envoy,
  // draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit` of the descriptor
  // closest to its limit (the smallest share of it remaining), and `Retry-After` when over.
  Ietf,
};

struct AnswerOptions {
  ResponseHeaders headers = ResponseHeaders::None;
  // The names of the `ResponseHeaders::Envoy` headers (envoyproxy/ratelimit's LIMIT_LIMIT_HEADER,
  // LIMIT_REMAINING_HEADER and LIMIT_RESET_HEADER).
  std::string limit_header = "RateLimit-Limit";
  std::string remaining_header = "RateLimit-Remaining";
  std::string reset_header = "RateLimit-Reset";
  // Add `dynamic_metadata` as envoyproxy/ratelimit's RESPONSE_DYNAMIC_METADATA does: the domain,
  // each descriptor (its entries as "key=value", its own limit and hits), the request's hits, and
  // under "metadata" the configured `metadata` of every descriptor within its limit, merged (the
  // first descriptor's value of a key wins; maps are merged key by key).
  bool dynamic_metadata = false;
  // A request of which the backend could not decide a descriptor (Redis did not answer) is
  // answered UNAVAILABLE, so that Envoy's `failure_mode_deny` decides it, as with
  // envoyproxy/ratelimit (`--on-redis-failure error`).
  bool fail_on_backend_failure = false;
  // The time requests are decided at (nanoseconds since the Unix epoch); empty: the system
  // clock. A simulation sets its own: `floodgate replay --config` is checked against the service
  // answering over gRPC at the instants of a trace.
  std::function<Instant()> clock = nullptr;
  // The longest one request may wait for a backend, for a caller without a sooner deadline of
  // its own (gRPC's; Envoy's filter sends its timeout, 20 ms by default, and the backend's
  // failure policy then answers before Envoy gives up).
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(1);
};

// Returns an error unless `name` can be an HTTP header's name (1 to 256 of RFC 9110's token
// characters).
Result<void> check_header_name(std::string_view name);

// Writes `response` to `request` into `proto`: the overall code (never UNKNOWN) and one status per
// descriptor (an `unlimited` one without `current_limit`, as envoyproxy/ratelimit), with the
// headers and dynamic metadata `options` asks for.
void to_proto(const Request& request, const Response& response,
              envoy::service::ratelimit::v3::RateLimitResponse& proto,
              const AnswerOptions& options = {});

// Answers `request` with `service` at the current time (nanoseconds since the Unix epoch),
// waiting for a backend until `deadline` at the latest. Returns OK, INVALID_ARGUMENT naming what
// is malformed in it, or UNAVAILABLE when no configuration is loaded yet
// (`Service::configured`) or, with `fail_on_backend_failure`, when the backend's failure policy
// decided a descriptor.
grpc::Status answer(Service& service,
                    const envoy::service::ratelimit::v3::RateLimitRequest& request,
                    envoy::service::ratelimit::v3::RateLimitResponse& response,
                    std::chrono::steady_clock::time_point deadline,
                    const AnswerOptions& options = {});

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
  // With `workers_`: queues `call` to be decided on a worker, with every call queued when that
  // worker starts, in one call to the service (one round trip to Redis for all of them). A
  // worker task is submitted for a call that finds none pending; while one worker waits on
  // Redis, the calls that come meanwhile go to the next.
  void queue_for_workers(Call* call);
  void decide_queued();

  server::Service& service_;
  ServiceMetrics* const metrics_;
  const AnswerOptions options_;
  Workers* const workers_;
  const std::size_t threads_;
  std::atomic<bool> hurry_{false};
  std::mutex queued_mu_;
  std::vector<Call*> queued_;     // Guarded by queued_mu_.
  bool drain_scheduled_ = false;  // Guarded by queued_mu_: a submitted task will take `queued_`.
  envoy::service::ratelimit::v3::RateLimitService::AsyncService async_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> running_;
};

}  // namespace floodgate::server
