// floodgate serve: Envoy's rate limit service, answered under envoyproxy/ratelimit's
// configuration.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "floodgate/server/config.h"
#include "floodgate/server/http_server.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/service.h"
#ifdef FLOODGATE_SERVE_HAS_REDIS
#include "floodgate/redis/internal/url.h"
#include "floodgate/server/redis_state.h"
#endif

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate serve --config PATH [flags]

Serves Envoy's Rate Limit Service (envoy.service.ratelimit.v3.RateLimitService, gRPC) under
envoyproxy/ratelimit's configuration: PATH is a YAML file, or a directory whose *.yaml and *.yml
files are read in name order, one domain each. Limits are kept in this process, or with --redis
in Redis, shared by every instance that uses it.

Flags:
  --config PATH           the configuration (required)
  --grpc ADDR             where to listen for gRPC, host:port (default 127.0.0.1:8081; port 0
                          picks a free one); the address is printed on standard output
  --http ADDR             where to listen for HTTP (default 127.0.0.1:8080; "off": nowhere):
                          POST /json (envoyproxy/ratelimit's endpoint: the proto3-JSON request,
                          answered 200 when OK and 429 when over the limit), GET /healthcheck,
                          GET /metrics (Prometheus text format)
  --redis URL             keep the limits in Redis (redis://host:port[/db], unix:///path,
                          redis+cluster://host:port[,...]), decided at Redis's clock; /healthcheck
                          answers 503 while Redis does not answer
  --redis-password-file F the Redis password, the first line of file F, kept out of the command
                          line (which every local user can read); else the environment variable
                          FLOODGATE_REDIS_PASSWORD, if set. The URL's user and password, if
                          written there, are percent-decoded (a '%' itself is %25)
  --on-redis-failure P    when Redis does not answer in time: fallback (default: an in-process
                          limit per instance), fail-open or fail-closed
  --redis-timeout S       the longest one descriptor's decision waits for Redis (default 0.005)
  --redis-threads N       threads that wait for Redis (default 32), so that gRPC's own threads
                          never do; more requests than this wait for one in turn, and their
                          deadlines run meanwhile
  --request-timeout S     the longest one request waits for Redis over all its descriptors
                          (default 0.02, Envoy's filter timeout), or until the gRPC deadline
                          less a tenth of the time left to it (1 ms at least), if sooner;
                          descriptors still undecided then are decided by --on-redis-failure
                          without a round trip
  --response-headers      add RateLimit-Policy, RateLimit (draft-ietf-httpapi-ratelimit-headers)
                          and, when over the limit, Retry-After to each answer's
                          response_headers_to_add, from the descriptor closest to its limit
  --shadow-mode           answer OK to everything, still counting what would be over the limit
  --max-keys-per-rule N   descriptor values with state per rule (default 100000); past it, new
                          values are decided without state until old ones are idle
  --reload-every S        check the configuration files for changes every S seconds (default 1);
                          a changed file is read again without dropping requests, rules whose
                          definition did not change keep their state, and a bad or unreadable
                          file keeps the previous configuration, says why on standard error,
                          and is tried again at every check until it loads

Signals: SIGINT or SIGTERM stops the service: it stops taking requests, those in progress finish
within their deadlines, those still waiting for Redis are answered by --on-redis-failure at
once, and it exits 0. SIGHUP reloads the configuration now (as systemd's ExecReload expects).
SIGUSR1, SIGUSR2 and SIGPIPE are ignored.
)";

// A signature of the configuration's files, those `Config::load` reads: names, sizes and
// modification times (an entry that cannot be read counts as such).
std::string files_signature(const std::string& path) {
  namespace fs = std::filesystem;
  std::string signature;
  std::error_code ec;
  const auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      signature += p.string() + ":?;";
      return;
    }
    signature += p.string() + ":" + std::to_string(st.st_size) + ":" +
                 std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  };
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      const fs::path ext = e.path().extension();
      if (ext == ".yaml" || ext == ".yml") files.push_back(e.path());
    }
    if (ec) return "?";  // Cannot be listed: not the signature of any listing.
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) add(f);
  } else {
    add(path);
  }
  return signature;
}

// Says on standard error what loading `config` skipped.
void say_warnings(const server::Config& config) {
  for (const std::string& warning : config.warnings()) {
    std::fprintf(stderr, "floodgate serve: %s\n", warning.c_str());
  }
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  Result<Flags> parsed = Flags::parse(
      "serve", args,
      {"config", "grpc", "http", "max-keys-per-rule", "reload-every", "redis", "on-redis-failure",
       "redis-timeout", "request-timeout", "redis-threads", "redis-password-file"},
      {"shadow-mode", "response-headers"});
  if (!parsed) return usage_error("serve", parsed.error().message());
  const Flags& flags = *parsed;
  if (!flags.positional().empty()) {
    return usage_error("serve", "unexpected argument \"" + flags.positional()[0] + "\"");
  }
  const std::optional<std::string> config_path = flags.get("config");
  if (!config_path) return usage_error("serve", "flag --config: needed (a file or a directory)");
  Result<std::uint64_t> max_keys = flags.get_uint("max-keys-per-rule", 100'000, 1, 1u << 30);
  if (!max_keys) return usage_error("serve", max_keys.error().message());
  Result<double> reload_every = flags.get_seconds("reload-every", 1.0, 0.01);
  if (!reload_every) return usage_error("serve", reload_every.error().message());
  const std::string address = flags.get_or("grpc", "127.0.0.1:8081");
  const std::string http_address = flags.get_or("http", "127.0.0.1:8080");
  std::optional<std::pair<std::string, int>> http_at;
  if (http_address != "off") {
    const auto colon = http_address.rfind(':');
    int http_port = -1;
    if (colon != std::string::npos) {
      const std::string digits = http_address.substr(colon + 1);
      const auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), http_port);
      if (ec != std::errc() || end != digits.data() + digits.size()) http_port = -1;
    }
    if (colon == std::string::npos || colon == 0 || http_port < 0 || http_port > 65535) {
      return usage_error("serve", "flag --http: \"" + http_address +
                                      "\" is not host:port (port 0 to 65535) or off");
    }
    http_at = {http_address.substr(0, colon), http_port};
  }

  Result<double> request_timeout = flags.get_seconds("request-timeout", 0.02, 0.0001);
  if (!request_timeout) return usage_error("serve", request_timeout.error().message());
  const server::AnswerOptions answer_options{.headers = flags.has("response-headers"),
                                             .request_timeout = std::chrono::duration_cast<Nanos>(
                                                 std::chrono::duration<double>(*request_timeout))};
  server::ServiceMetrics metrics;
  server::ServiceOptions service_options{.max_keys_per_rule = *max_keys,
                                         .shadow_mode = flags.has("shadow-mode")};
  for (const char* only : {"on-redis-failure", "redis-timeout", "request-timeout", "redis-threads",
                           "redis-password-file"}) {
    if (flags.get(only) && !flags.get("redis")) {
      return usage_error("serve", "flag --" + std::string(only) + ": needs --redis URL");
    }
  }
#ifdef FLOODGATE_SERVE_HAS_REDIS
  std::unique_ptr<server::RedisStates> redis;
  // Requests wait for Redis on these, not on gRPC's threads; destroyed after the gRPC server.
  std::unique_ptr<server::Workers> redis_workers;
  if (const std::optional<std::string> url = flags.get("redis")) {
    server::RedisStateOptions o{.url = *url};
    // The password, out of argv (which every local user can read in /proc): a file, or the
    // environment.
    if (const std::optional<std::string> file = flags.get("redis-password-file")) {
      std::ifstream in(*file, std::ios::binary);
      if (!in) {
        return usage_error("serve", "flag --redis-password-file: \"" + *file + "\": cannot open");
      }
      std::getline(in, o.password);
      if (!o.password.empty() && o.password.back() == '\r') o.password.pop_back();
      if (o.password.empty()) {
        return usage_error(
            "serve", "flag --redis-password-file: \"" + *file + "\": its first line is empty");
      }
    } else if (const char* env = std::getenv("FLOODGATE_REDIS_PASSWORD");
               env != nullptr && *env != '\0') {
      o.password = env;
    }
    const std::string policy = flags.get_or("on-redis-failure", "fallback");
    if (policy == "fail-open") {
      o.on_failure = OnRedisFailure::FailOpen;
    } else if (policy == "fail-closed") {
      o.on_failure = OnRedisFailure::FailClosed;
    } else if (policy != "fallback") {
      return usage_error("serve", "flag --on-redis-failure: \"" + policy +
                                      "\" must be fallback, fail-open or fail-closed");
    }
    Result<double> timeout = flags.get_seconds("redis-timeout", 0.005, 0.0001);
    if (!timeout) return usage_error("serve", timeout.error().message());
    o.command_timeout = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(*timeout));
    Result<std::unique_ptr<server::RedisStates>> made = server::RedisStates::create(o, &metrics);
    if (!made) return usage_error("serve", "flag --redis: " + made.error().message());
    redis = std::move(*made);
    Result<std::uint64_t> threads = flags.get_uint("redis-threads", 32, 1, 4096);
    if (!threads) return usage_error("serve", threads.error().message());
    redis_workers = std::make_unique<server::Workers>(*threads);
    service_options.make_state = redis->factory();
    Result<std::shared_ptr<server::OverrideState>> overrides = redis->override_state();
    if (!overrides) return usage_error("serve", overrides.error().message());
    service_options.override_state = std::move(*overrides);
    metrics.set_backend_errors([&redis] { return redis->errors(); });
  }
#else
  if (flags.get("redis")) {
    return usage_error("serve",
                       "flag --redis: this floodgate-serve was built without the Redis "
                       "backend (libhiredis-dev: scripts/install-deps.sh)");
  }
#endif
  Result<server::Config> config = server::Config::load(*config_path);
  if (!config) return usage_error("serve", config.error().message());
  say_warnings(*config);
  metrics.config_load(true);
  std::string signature = files_signature(*config_path);
  Result<std::unique_ptr<server::Service>> made = server::Service::create(
      std::make_shared<const server::Config>(std::move(*config)), std::move(service_options));
  if (!made) return usage_error("serve", made.error().message());
  server::Service& service = **made;
#ifdef FLOODGATE_SERVE_HAS_REDIS
  // Connect and load the scripts now, not in the first requests' Redis timeout. A Redis that
  // does not answer yet is not fatal: requests are answered by the failure policy until it does.
  if (redis) {
    if (Result<void> up = redis->connect(std::chrono::seconds(1)); up) {
      std::printf("floodgate serve: Redis at %s: connected\n",
                  internal::quoted_url(*flags.get("redis")).c_str());
    } else {
      std::fprintf(stderr,
                   "floodgate serve: Redis at %s does not answer (%s); requests are answered by "
                   "--on-redis-failure until it does\n",
                   internal::quoted_url(*flags.get("redis")).c_str(), up.error().message().c_str());
    }
  }
#endif

  // A peer that goes away must not end the service: every socket write says MSG_NOSIGNAL, and a
  // SIGPIPE sent from outside is ignored as well.
  ::signal(SIGPIPE, SIG_IGN);
  // Signals are taken by this thread only: block them before any other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

#ifdef FLOODGATE_SERVE_HAS_REDIS
  server::Workers* const workers = redis_workers.get();
#else
  server::Workers* const workers = nullptr;
#endif
  server::AsyncRls rls(service, &metrics, answer_options, workers,
                       std::max(2u, std::thread::hardware_concurrency()));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  rls.add_to(builder);
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || port == 0) {
    return usage_error("serve", "flag --grpc: cannot listen on \"" + address + "\"");
  }
  rls.start();
  const std::string host = address.substr(0, address.rfind(':'));
  std::printf("floodgate serve: gRPC on %s:%d\n", host.c_str(), port);

  server::HttpServer http;
  if (http_at) {
    http.route("POST", "/json", server::HttpLane::Slow, [&](const server::HttpRequest& req) {
      const auto start = std::chrono::steady_clock::now();
      envoy::service::ratelimit::v3::RateLimitRequest request;
      envoy::service::ratelimit::v3::RateLimitResponse response;
      // Any content type: envoyproxy/ratelimit reads the body as JSON whatever the client says.
      const auto read = google::protobuf::util::JsonStringToMessage(req.body, &request);
      Result<void> answered =
          read.ok() ? server::answer(service, request, response,
                                     start + answer_options.request_timeout, answer_options.headers)
                    : Result<void>(Error("the body is not a JSON "
                                         "RateLimitRequest: " +
                                         std::string(read.message())));
      metrics.observe("http", std::chrono::steady_clock::now() - start, !answered);
      if (!answered)
        return server::HttpResponse{400, "text/plain", answered.error().message() + "\n"};
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(response, &json);
      return server::HttpResponse{
          response.overall_code() == envoy::service::ratelimit::v3::RateLimitResponse::OVER_LIMIT
              ? 429
              : 200,
          "application/json", std::move(json)};
    });
    http.route("GET", "/healthcheck", server::HttpLane::Fast, [&](const server::HttpRequest&) {
#ifdef FLOODGATE_SERVE_HAS_REDIS
      if (redis) {
        if (const std::string why = redis->health(); !why.empty()) {
          return server::HttpResponse{503, "text/plain", "degraded: " + why + "\n"};
        }
      }
#endif
      return server::HttpResponse{200, "text/plain", "OK\n"};
    });
    http.route("GET", "/metrics", server::HttpLane::Fast, [&](const server::HttpRequest&) {
      std::string out;
      service.write_metrics(out);
      metrics.write(out);
      const server::HttpServerStats h = http.stats();
      for (const auto& [name, help, value] :
           {std::tuple{"floodgate_http_connections_refused_total",
                       "HTTP connections closed at once: every place was taken by a request "
                       "being answered.",
                       h.connections_refused},
            std::tuple{"floodgate_http_connections_evicted_total",
                       "HTTP connections closed to make room for a new one (the one that had "
                       "waited longest for a whole request).",
                       h.connections_evicted},
            std::tuple{"floodgate_http_timeouts_total",
                       "HTTP requests whose head or body did not arrive in time, and idle "
                       "connections closed.",
                       h.timeouts},
            std::tuple{"floodgate_http_refused_requests_total",
                       "HTTP requests refused before any handler (malformed, too large, too "
                       "slow).",
                       h.refused_requests}}) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
        out.append(name).append(" counter\n").append(name).append(" ");
        out.append(std::to_string(value)).append("\n");
      }
      return server::HttpResponse{200, "text/plain; version=0.0.4", std::move(out)};
    });
    Result<int> bound = http.listen(http_at->first, http_at->second);
    if (!bound) {
      grpc_server->Shutdown();
      rls.stop();
      return usage_error("serve", "flag --http: " + bound.error().message());
    }
    std::printf("floodgate serve: HTTP on %s:%d\n", http_at->first.c_str(), *bound);
  }
  std::fflush(stdout);

  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;    // Guarded by mu.
  bool reload_now = false;  // SIGHUP. Guarded by mu.
  std::thread reloader([&] {
    std::unique_lock lock(mu);
    const auto every = std::chrono::duration<double>(*reload_every);
    // The files as they were when the configuration in force was read. A load that fails does
    // not change it, so the next poll tries again (a file that was unreadable, or half written,
    // may be fine now with the same size and time); its error is said once, until it changes.
    std::string failed;  // The error of the last attempt, if it failed.
    for (;;) {
      wake.wait_for(lock, every, [&] { return stopping || reload_now; });
      if (stopping) return;
      const bool asked = std::exchange(reload_now, false);
      const std::string now = files_signature(*config_path);
      if (!asked && now == signature && failed.empty()) continue;
      lock.unlock();
      Result<server::Config> next = server::Config::load(*config_path);
      if (next) say_warnings(*next);
      const Result<void> installed =
          next ? service.set_config(std::make_shared<const server::Config>(std::move(*next)))
               : Result<void>(next.error());
      lock.lock();
      if (!installed) {
        if (asked || installed.error().message() != failed) {
          metrics.config_load(false);
          std::fprintf(stderr,
                       "floodgate serve: the configuration was not reloaded, the previous one "
                       "stays (tried again every %g s until it loads): %s\n",
                       *reload_every, installed.error().message().c_str());
        }
        failed = installed.error().message();
        continue;
      }
      metrics.config_load(true);
      signature = now;
      failed.clear();
      std::fprintf(stderr, "floodgate serve: configuration reloaded from %s%s\n",
                   config_path->c_str(), asked ? " (SIGHUP)" : "");
    }
  });

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number == SIGINT || signal_number == SIGTERM) break;
    if (signal_number == SIGHUP) {
      const std::lock_guard lock(mu);
      reload_now = true;
      wake.notify_all();
      continue;
    }
    std::fprintf(stderr, "floodgate serve: %s ignored\n",
                 signal_number == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
  }
  std::fprintf(stderr, "floodgate serve: %s, stopping\n",
               signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  {
    const std::lock_guard lock(mu);
    stopping = true;
  }
  wake.notify_all();
  reloader.join();
  http.stop();  // Returns once its handlers have answered.
  // In order: requests not yet decided are decided without waiting for Redis; the server stops
  // taking calls and waits for those in progress (each bounded by its own deadline); the
  // workers finish theirs; the queues are drained; only then is the server destroyed, when no
  // thread can answer a call on it any more.
  rls.hurry();
  grpc_server->Shutdown(std::chrono::system_clock::now() + answer_options.request_timeout +
                        std::chrono::seconds(1));
  if (workers != nullptr) workers->stop();
  rls.stop();
  grpc_server.reset();
  return kExitOk;
}

}  // namespace floodgate::app
