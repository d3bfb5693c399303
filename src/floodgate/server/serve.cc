#include "floodgate/server/serve.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <thread>
#include <utility>

#include "floodgate/core/internal/format.h"
#include "floodgate/redis/redis_limiter.h"
#include "floodgate/server/config_watcher.h"
#include "floodgate/server/grpc_health.h"
#include "floodgate/server/http_endpoint.h"
#include "floodgate/server/http_server.h"

namespace floodgate::server {

namespace {

// Returns `why` a socket could not listen, with what to do when the address is in use and ports
// are not shared.
std::string listen_error(const std::string& why, bool reuse_port) {
  if (reuse_port || why.find("address already in use") == std::string::npos) return why;
  return why + "; --reuse-port shares it with other instances that ask to";
}

// Returns an error naming `address` and why, if a socket of our own cannot listen on it (host:port
// only; other forms of gRPC address are left to gRPC).
Result<void> try_grpc_address(const std::string& address) {
  Result<std::pair<std::string, int>> at = parse_host_port(address);
  if (!at || at->second == 0) return {};
  std::string host = at->first;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (Result<void> free = try_listen(host, at->second); !free) {
    return free.error();
  }
  return {};
}

}  // namespace

Runner::Runner(ServeOptions options) : options_(std::move(options)) {}

Runner::~Runner() { stop(); }

Result<std::unique_ptr<Runner>> Runner::start(ServeOptions options) {
  std::unique_ptr<Runner> r(new Runner(std::move(options)));
  const ServeOptions& o = r->options_;
  const auto say = [&o](LogLevel level, const std::string& line) {
    if (o.log) o.log(level, line);
  };
  {
    std::string backend = "rules' state in this process (at most " +
                          std::to_string(o.max_keys_per_rule) + " values a rule)";
    if (o.redis) {
      char timeout[32];
      std::snprintf(timeout, sizeof timeout, "%g",
                    std::chrono::duration<double>(o.redis->command_timeout).count());
      backend = "rules' state in Redis at " + quoted_redis_url(o.redis->url) + " (" + timeout +
                " s timeout; on failure: " + std::string(to_string(o.redis->on_failure)) + ")";
    }
    say(LogLevel::Info, "floodgate serve" + (o.version.empty() ? "" : " " + o.version) +
                            (o.commit.empty() ? "" : " (commit " + o.commit + ")") +
                            " starting: " + backend);
  }
  ServiceOptions service_options{.max_keys_per_rule = o.max_keys_per_rule,
                                 .shadow_mode = o.shadow_mode,
                                 .quota_mode = o.quota_mode,
                                 .near_limit_ratio = o.near_limit_ratio};
  if (o.redis) {
    RedisBackendOptions redis = *o.redis;
    if (!redis.log) redis.log = o.log;
    Result<std::shared_ptr<RedisBackend>> made = RedisBackend::create(std::move(redis));
    if (!made) return made.error();
    r->redis_ = std::move(*made);
    r->workers_ = std::make_unique<Workers>(o.redis_threads);
    service_options.backend = r->redis_;
  }
  Result<Config> config = Config::load(o.config_path, o.merge_domains);
  std::string signature;  // Of the files loaded; none loaded: the watcher tries at once.
  if (!config && o.start_without_config) {
    say(LogLevel::Error,
        "the configuration did not load; answering UNAVAILABLE until it does (tried "
        "again at every check): " +
            config.error().message());
    r->metrics_.config_load_failed();
    r->service_ =
        Service::create_unconfigured(std::move(service_options), config.error().message());
  } else {
    if (!config) return config.error();
    for (const std::string& warning : config->warnings()) say(LogLevel::Warn, warning);
    say(LogLevel::Info,
        "configuration loaded from " + o.config_path + ": " + describe_loaded(*config));
    r->metrics_.config_loaded(*config);
    signature = files_signature(o.config_path);
    Result<std::unique_ptr<Service>> service = Service::create(
        std::make_shared<const Config>(std::move(*config)), std::move(service_options));
    if (!service) return service.error();
    r->service_ = std::move(*service);
  }
  r->registry_.add([version = o.version, commit = o.commit](std::string& out) {
    append_family(out, "floodgate_build_info",
                  "1, labelled with the version and the git commit this server was built from.",
                  "gauge");
    append_sample(out, "floodgate_build_info",
                  "version=\"" + label_value(version) + "\",commit=\"" + label_value(commit) + "\"",
                  1);
  });
  r->registry_.add(process_metrics());
  r->registry_.add([&s = *r->service_](std::string& out) { s.write_metrics(out); });
  r->registry_.add([&m = r->metrics_](std::string& out) { m.write(out); });
  r->registry_.add([redis = r->redis_.get()](std::string& out) {
    append_family(out, "floodgate_backend_errors_total",
                  "Calls to the backend (Redis) that failed.", "counter");
    append_sample(out, "floodgate_backend_errors_total", "", redis ? redis->errors() : 0);
    append_family(out, "floodgate_policy_decisions_total",
                  "Descriptors decided by the Redis failure policy instead of Redis, by why.",
                  "counter");
    const auto decided =
        redis ? redis->policy_decisions() : std::array<std::uint64_t, kRedisFailures>{};
    for (std::size_t i = 1; i < decided.size(); ++i) {
      append_sample(out, "floodgate_policy_decisions_total",
                    "reason=\"" + std::string(to_string(static_cast<RedisFailure>(i))) + "\"",
                    decided[i]);
    }
    if (redis == nullptr) return;
    append_family(out, "floodgate_redis_up",
                  "1 while Redis decides the calls sent to it, 0 from a failure (no answer in "
                  "time, unreachable, an error reply, an open circuit breaker) to its next answer.",
                  "gauge");
    append_sample(out, "floodgate_redis_up", "", redis->up() ? 1 : 0);
    append_family(out, "floodgate_redis_breaker_open",
                  "1 while a Redis server's circuit breaker keeps calls from being sent to it.",
                  "gauge");
    append_sample(out, "floodgate_redis_breaker_open", "", redis->breaker_open() ? 1 : 0);
    append_family(out, "floodgate_redis_breaker_opens_total",
                  "Times a Redis server's circuit breaker opened (again after each failed trial).",
                  "counter");
    append_sample(out, "floodgate_redis_breaker_opens_total", "", redis->breaker_opens());
    append_family(out, "floodgate_redis_round_trip_seconds",
                  "Time a request's descriptors (or requests decided together) waited for Redis: "
                  "one round trip per server, and any wait for the connection's batch ahead.",
                  "histogram");
    redis->round_trips().write(out, "floodgate_redis_round_trip_seconds", "");
  });
  if (r->redis_) {
    // Connect and load the scripts now, not in the first requests' Redis timeout.
    const std::string url = quoted_redis_url(o.redis->url);
    if (Result<void> up = r->redis_->connect(std::chrono::seconds(1)); up) {
      say(LogLevel::Info, "Redis at " + url + ": connected");
    } else {
      say(LogLevel::Error,
          "Redis at " + url + " does not answer (" + up.error().message() +
              "); requests are answered by the Redis failure policy until it does");
    }
  }

  r->rls_ = std::make_unique<AsyncRls>(*r->service_, &r->metrics_, o.answer, r->workers_.get(),
                                       std::max(2u, std::thread::hardware_concurrency()));
  // Why the service cannot serve: no configuration yet, or Redis does not answer.
  std::function<std::string()> health = [service = r->service_.get(), redis = r->redis_.get()] {
    if (!service->configured()) return std::string("no rate limit configuration loaded");
    return redis != nullptr ? redis->health() : std::string();
  };
  r->health_ = std::make_unique<GrpcHealth>(health);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.grpc_address, grpc::InsecureServerCredentials(), &r->grpc_port_);
  r->rls_->add_to(builder);
  builder.RegisterService(r->health_.get());
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, o.reuse_port ? 1 : 0);
  // A port in use is said here, in words, rather than by gRPC's own log (a shared port is
  // gRPC's to bind).
  if (!o.reuse_port) {
    if (Result<void> free = try_grpc_address(o.grpc_address); !free) {
      return Error("gRPC address: " + listen_error(free.error().message(), false));
    }
  }
  r->grpc_ = builder.BuildAndStart();
  if (!r->grpc_ || r->grpc_port_ == 0) {
    r->grpc_.reset();
    return Error("gRPC address \"" + o.grpc_address + "\": cannot listen on it");
  }
  r->rls_->start();
  say(LogLevel::Info, "gRPC on " + o.grpc_address.substr(0, o.grpc_address.rfind(':')) + ":" +
                          std::to_string(r->grpc_port_));

  if (o.http) {
    r->http_ = std::make_unique<HttpServer>(HttpServerOptions{.reuse_port = o.reuse_port});
    add_http_endpoint(*r->http_, *r->service_, r->metrics_, r->registry_, o.answer,
                      std::move(health));
    r->registry_.add(http_server_metrics(*r->http_));
    Result<int> bound = r->http_->listen(o.http_host, o.http_port);
    if (!bound) {
      return Error("HTTP address: " + listen_error(bound.error().message(), o.reuse_port));
    }
    r->http_port_ = *bound;
    say(LogLevel::Info, "HTTP on " + o.http_host + ":" + std::to_string(r->http_port_));
  }
  r->watcher_ =
      std::make_unique<ConfigWatcher>(*r->service_, r->metrics_,
                                      ConfigWatcherOptions{.path = o.config_path,
                                                           .merge_domains = o.merge_domains,
                                                           .every = o.reload_every,
                                                           .log = o.log},
                                      signature);
  return r;
}

void Runner::reload_now(std::string why) {
  if (watcher_) watcher_->reload_now(std::move(why));
}

void Runner::stop() {
  if (stopped_.exchange(true)) return;
  if (health_) health_->stop();  // Health checks say NOT_SERVING from now on.
  if (watcher_) watcher_->stop();
  if (http_) http_->stop();  // Returns once its handlers have answered.
  if (rls_ == nullptr) return;
  // In order: requests not yet decided are decided without waiting for Redis; the server stops
  // taking calls and waits for those in progress (each bounded by its own deadline); the
  // workers finish theirs; the queues are drained; only then is the server destroyed, when no
  // thread can answer a call on it any more.
  rls_->hurry();
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() + options_.answer.request_timeout +
                    std::chrono::seconds(1));
  }
  if (workers_) workers_->stop();
  rls_->stop();
  grpc_.reset();
}

Result<float> parse_ratio(std::string_view text) {
  const bool decimal =
      !text.empty() && text.find_first_not_of("0123456789.") == std::string_view::npos;
  float value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!decimal || ec != std::errc() || end != text.data() + text.size() || !(value >= 0) ||
      value > 1) {
    return Error(internal::quoted(text) + " is not a decimal number from 0 to 1");
  }
  return value;
}

Result<void> run(ServeOptions options) {
  // A peer that goes away must not end the service: every socket write says MSG_NOSIGNAL, and a
  // SIGPIPE sent from outside is ignored as well.
  ::signal(SIGPIPE, SIG_IGN);
  // Signals are taken by this thread only: blocked before any other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const Log log = options.log;
  const auto say = [&log](const std::string& line) {
    if (log) log(LogLevel::Info, line);
  };
  Result<std::unique_ptr<Runner>> runner = Runner::start(std::move(options));
  if (!runner) return runner.error();
  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number == SIGINT || signal_number == SIGTERM) break;
    if (signal_number == SIGHUP) {
      (*runner)->reload_now("SIGHUP");
    } else {
      say(signal_number == SIGUSR1 ? "SIGUSR1 ignored" : "SIGUSR2 ignored");
    }
  }
  say(signal_number == SIGINT ? "SIGINT, stopping" : "SIGTERM, stopping");
  (*runner)->stop();
  return {};
}

}  // namespace floodgate::server
