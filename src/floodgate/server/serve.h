// `floodgate serve` as a library: `Runner` puts together what the service runs on (the
// configuration and its watcher, the rules' state in this process or in Redis, the gRPC and
// HTTP endpoints, the threads that wait for Redis) and stops it in order; `run` is the whole
// program, taking the process's signals. `apps/floodgate/serve_command.cc` only turns flags
// into `ServeOptions`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/server/log.h"
#include "floodgate/server/metrics.h"
#include "floodgate/server/redis_backend.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/service.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace floodgate::server {

class ConfigWatcher;
class GrpcHealth;
class HttpServer;

struct ServeOptions {
  std::string config_path = {};  // A YAML file, or a folder of them (`Config::load`).
  bool merge_domains = false;    // `Config::load`'s: a domain may span several files.
  std::string grpc_address = "127.0.0.1:8081";  // host:port; port 0 picks a free one.
  bool http = true;                             // Serve HTTP (`http_endpoint.h`) as well.
  std::string http_host = "127.0.0.1";
  int http_port = 8080;  // 0 picks a free one.
  // Share the gRPC and HTTP ports with other processes that ask to (SO_REUSEPORT), the kernel
  // spreading connections among them. Off: a port in use is an error, so that a second instance
  // (a stale one, with another configuration and counts of its own) cannot take part of the
  // traffic unseen.
  bool reuse_port = false;
  std::size_t max_keys_per_rule = 100'000;
  bool shadow_mode = false;  // `ServiceOptions::shadow_mode`.
  bool quota_mode = false;   // `ServiceOptions::quota_mode`.
  float near_limit_ratio = 0.8f;
  Nanos reload_every = std::chrono::seconds(1);
  // A configuration that does not load at start is not an error: the service starts, answers
  // UNAVAILABLE and reports NOT_SERVING until a check loads it (envoyproxy/ratelimit's way).
  bool start_without_config = false;
  AnswerOptions answer = {};
  // Keep the rules' state in Redis rather than in this process.
  std::optional<RedisBackendOptions> redis = {};
  // The most threads that wait for Redis, so that gRPC's never do; started as requests need
  // them (see `Workers`).
  std::size_t redis_threads = 1024;
  // What this build is, for `floodgate_build_info` and the start-up line (empty: not said).
  std::string version = {};
  std::string commit = {};
  // Where the service says what happens: where it listens, what it loaded and what a reload
  // changed (info); warnings of the configuration, Redis's changes of state, the failure
  // policy's decisions (summarized, at most every 10 s), signals. Null: nowhere.
  Log log = nullptr;
};

// The service, running. Thread-safe.
class Runner {
 public:
  // Reads the configuration, connects to Redis (a Redis that does not answer yet is not an
  // error: its failure policy answers until it does), and listens. Returns an error naming the
  // configuration's mistake, the Redis URL, or the address that cannot be listened on.
  static Result<std::unique_ptr<Runner>> start(ServeOptions options);

  // Stops it (see `stop`).
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  int grpc_port() const noexcept { return grpc_port_; }
  int http_port() const noexcept { return http_port_; }  // 0 without HTTP.

  // Reads the configuration again now; the line that says so ends with `(why)`.
  void reload_now(std::string why);

  // Stops taking requests; those in progress finish within their deadlines, and those still
  // waiting for Redis are answered by its failure policy at once. Idempotent.
  void stop();

 private:
  explicit Runner(ServeOptions options);

  const ServeOptions options_;
  ServiceMetrics metrics_;
  MetricsRegistry registry_;  // What `/metrics` writes.
  std::shared_ptr<RedisBackend> redis_;
  std::unique_ptr<Workers> workers_;  // Requests wait for Redis on these.
  std::unique_ptr<Service> service_;
  std::unique_ptr<AsyncRls> rls_;
  std::unique_ptr<GrpcHealth> health_;  // grpc.health.v1.Health, on the gRPC port.
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ConfigWatcher> watcher_;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::atomic<bool> stopped_{false};
};

// Returns `text` as a ratio from 0 to 1 (a decimal number: "0.8", "1"), or an error naming it.
Result<float> parse_ratio(std::string_view text);

// Runs the service until SIGINT or SIGTERM, then stops it in order and returns. SIGHUP reloads
// the configuration; SIGUSR1, SIGUSR2 and SIGPIPE are ignored. Call it from the main thread
// before any other thread starts: it blocks those signals for every thread it starts, and takes
// them itself. Returns the error of `Runner::start`.
Result<void> run(ServeOptions options);

}  // namespace floodgate::server
