// floodgate serve: Envoy's rate limit service, answered under envoyproxy/ratelimit's
// configuration. This file turns flags into `server::ServeOptions`; src/floodgate/server/serve.h
// runs the service.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "build_info.h"
#include "commands.h"
#include "flags.h"
#include "floodgate/core/internal/format.h"
#include "floodgate/server/config.h"
#include "floodgate/server/http_server.h"
#include "floodgate/server/log.h"
#include "floodgate/server/serve.h"
#include "serve_environment.h"

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate serve --config PATH [flags]

Serves Envoy's Rate Limit Service (envoy.service.ratelimit.v3.RateLimitService, gRPC) under
envoyproxy/ratelimit's configuration: PATH is a YAML file, or a directory whose *.yaml and *.yml
files are read in name order, one domain each. Limits are kept in this process, or with --redis
in Redis, shared by every instance that uses it.

Flags (each also read from envoyproxy/ratelimit's environment setting, when set and the flag
is not given: RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY, GRPC_HOST/GRPC_PORT,
HOST/PORT, REDIS_URL with REDIS_SOCKET_TYPE, REDIS_TYPE and REDIS_AUTH, CACHE_KEY_PREFIX,
SHADOW_MODE, QUOTA_MODE, LIMIT_RESPONSE_HEADERS_ENABLED and the three header names,
NEAR_LIMIT_RATIO, RESPONSE_DYNAMIC_METADATA, FORCE_START_WITHOUT_INITIAL_CONFIG,
MERGE_DOMAIN_CONFIG; a setting floodgate does not support is named at start):
  --config PATH           the configuration (required)
  --check-config PATH     check the configuration PATH (a file or a directory, as --config; with
                          --merge-domains if given) and exit without serving: 0 when it loads,
                          else 1 with every error on standard error, one "file:line: what" a
                          line (a file that is not valid YAML stops at its first), for CI
  --log-format F          text (default: "2026-12-07T19:57:05.123Z info  message") or json
                          ({"time":...,"level":...,"msg":...}), one line per event, on standard
                          error: where it listens, what it loaded, what a reload changed, Redis
                          not deciding and deciding again, the failure policy's decisions (at
                          most a line per 10 s), signals
  --log-level L           the least level written: debug, info (default), warn or error
  --version               print the version and the commit it was built from, and exit
  --grpc ADDR             where to listen for gRPC, host:port (default 127.0.0.1:8081; port 0
                          picks a free one); the address is printed on standard output
  --http ADDR             where to listen for HTTP (default 127.0.0.1:8080; "off": nowhere):
                          POST /json (envoyproxy/ratelimit's endpoint: the proto3-JSON request,
                          answered 200 when OK and 429 when over the limit), GET /healthcheck,
                          GET /rlconfig (the rules in force, a line each, as
                          envoyproxy/ratelimit's debug endpoint lists them), GET /metrics
                          (Prometheus text format)
  --reuse-port            share the gRPC and HTTP ports with other instances started with it
                          (SO_REUSEPORT; the kernel spreads connections among them); without
                          it, a port something else listens on is an error, so that a second
                          instance cannot take part of the traffic with counts of its own
  --redis URL             keep the limits in Redis (redis://host:port[/db], unix:///path,
                          redis+cluster://host:port[,...], or
                          redis+sentinel://host:port[,...]/master-name for the master that Redis
                          Sentinel names, followed through a failover); /healthcheck
                          answers 500 while Redis does not answer (as
                          envoyproxy/ratelimit), and gRPC's health service NOT_SERVING
  --redis-tls-ca F, --redis-tls-cert F, --redis-tls-key F
                          TLS to Redis, for a rediss:// URL (rediss+cluster://,
                          rediss+sentinel://): the CAs to verify the server with (PEM; default
                          the system's), a client certificate and its key (PEM)
  --redis-tls-skip-hostname-verification
                          do not check that the server's certificate names the host
  --redis-password-file F the Redis password, the first line of file F, kept out of the command
                          line (which every local user can read); else the environment variable
                          FLOODGATE_REDIS_PASSWORD, if set. The URL's user and password, if
                          written there, are percent-decoded (a '%' itself is %25)
  --on-redis-failure P    when Redis does not answer in time: fallback (default: an in-process
                          limit per instance), fail-open, fail-closed, or error (the call fails
                          with UNAVAILABLE, HTTP 500, and Envoy's failure_mode_deny decides, as
                          with envoyproxy/ratelimit)
  --redis-timeout S       the longest a Redis round trip may take, counted from the write that
                          sends it, before --on-redis-failure decides (default 0.1): a measure of
                          Redis, not of the requests ahead; one request's descriptors go to
                          Redis in one round trip (one per server of a cluster)
  --redis-threads N       the most threads that wait for Redis (default 1024), so that gRPC's own
                          threads never do; one is started for each request that finds none
                          idle, so requests wait for a thread only past this many at once
  --request-timeout S     the longest one request waits for Redis (default 1), or until its gRPC
                          deadline less a tenth of the time left to it (1 ms at least), if
                          sooner (Envoy's filter sends its own, 20 ms by default); descriptors
                          still undecided then are decided by --on-redis-failure
  --response-headers      add envoyproxy/ratelimit's RateLimit-Limit, RateLimit-Remaining and
                          RateLimit-Reset (whole seconds) to each answer's response_headers_to_add,
                          from the descriptor over the limit, else the one with the least
                          remaining (as its LIMIT_RESPONSE_HEADERS_ENABLED)
  --limit-header NAME, --remaining-header NAME, --reset-header NAME
                          the names of those three headers
  --ietf-response-headers instead, RateLimit-Policy and RateLimit
                          (draft-ietf-httpapi-ratelimit-headers) and, when over the limit,
                          Retry-After, from the descriptor closest to its limit
  --response-dynamic-metadata
                          add the request's domain, descriptors and the configured metadata of
                          the descriptors within their limit to each answer's dynamic_metadata
                          (as envoyproxy/ratelimit's RESPONSE_DYNAMIC_METADATA)
  --shadow-mode           answer OK overall to everything; each descriptor's status still says
                          OVER_LIMIT when it is, and is counted (envoyproxy/ratelimit's
                          SHADOW_MODE)
  --quota-mode            every rule in quota mode: a request is over the limit only when all its
                          limited descriptors are (envoyproxy/ratelimit's QUOTA_MODE)
  --near-limit-ratio R    hits admitted past R times the limit count as near it in
                          floodgate_rule_near_limit_total (default 0.8, from 0 to 1)
  --max-keys-per-rule N   descriptor values with state per rule (default 100000); past it, new
                          values are decided without state until old ones are idle
  --start-without-config  start even if the configuration does not load: answer UNAVAILABLE
                          (HTTP 500) and report unhealthy until a check loads it, as
                          envoyproxy/ratelimit does; by default such a start fails, naming the
                          file and line
  --merge-domains         a domain may be defined in several files, their descriptors merged
                          (MERGE_DOMAIN_CONFIG); by default a domain lives in one file
  --cache-key-prefix P    written before every key in Redis (default none; envoyproxy/ratelimit's
                          CACHE_KEY_PREFIX): Envoy's window counts in envoyproxy/ratelimit's own
                          keys, P + domain_key_value_..._windowstart, so that its instances and
                          these share counts on one Redis; the other algorithms' keys are
                          P + floodgate-serve: + the rule
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

Nanos seconds(double s) {
  return std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(s));
}

void say_out(const std::string& line) {
  std::printf("floodgate serve: %s\n", line.c_str());
  std::fflush(stdout);
}
void say_err(const std::string& line) {
  std::fprintf(stderr, "floodgate serve: %s\n", line.c_str());
}

// `--check-config PATH`: every error on standard error, one "file:line: what" a line, and 1; or
// what was read on standard output, and 0.
int check_config(const std::string& path, bool merge_domains) {
  const server::ConfigCheck check = server::Config::check(path, merge_domains);
  for (const std::string& warning : check.warnings) say_err("warning: " + warning);
  for (const std::string& error : check.errors) std::fprintf(stderr, "%s\n", error.c_str());
  const auto count = [](std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  if (!check.errors.empty()) {
    say_err("configuration " + internal::quoted(path) + ": " +
            count(check.errors.size(), "error", "errors"));
    return kExitUsage;
  }
  say_out("configuration " + internal::quoted(path) + ": OK, " +
          count(check.domains, "domain", "domains") + ", " +
          count(check.rules, "descriptor", "descriptors") + " in " +
          count(check.files.size(), "file", "files"));
  return kExitOk;
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  if (std::find(args.begin(), args.end(), "--version") != args.end()) {
    std::printf("floodgate serve %s (commit %s)\n", kVersion, kCommit);
    return kExitOk;
  }
  const std::set<std::string, std::less<>> valued = {"config",
                                                     "check-config",
                                                     "log-format",
                                                     "log-level",
                                                     "grpc",
                                                     "http",
                                                     "max-keys-per-rule",
                                                     "reload-every",
                                                     "redis",
                                                     "on-redis-failure",
                                                     "redis-timeout",
                                                     "request-timeout",
                                                     "redis-threads",
                                                     "redis-password-file",
                                                     "limit-header",
                                                     "remaining-header",
                                                     "reset-header",
                                                     "near-limit-ratio",
                                                     "cache-key-prefix",
                                                     "redis-tls-ca",
                                                     "redis-tls-cert",
                                                     "redis-tls-key"};
  const std::set<std::string, std::less<>> booleans = {"shadow-mode",
                                                       "quota-mode",
                                                       "response-headers",
                                                       "ietf-response-headers",
                                                       "response-dynamic-metadata",
                                                       "start-without-config",
                                                       "merge-domains",
                                                       "reuse-port",
                                                       "redis-tls-skip-hostname-verification"};
  Result<Flags> given = Flags::parse("serve", args, valued, booleans);
  if (!given) return usage_error("serve", given.error().message());
  // envoyproxy/ratelimit's environment settings, for the flags not given.
  std::set<std::string, std::less<>> present;
  for (const std::string& f : valued) {
    if (given->get(f)) present.insert(f);
  }
  for (const std::string& f : booleans) {
    if (given->has(f)) present.insert(f);
  }
  Result<EnvoyEnvironment> env = read_envoy_environment(present);
  if (!env) return usage_error("serve", env.error().message());
  std::vector<std::string> all = args;
  for (const auto& [flag, value] : env->flags) {
    all.push_back("--" + flag);
    if (valued.contains(flag)) all.push_back(value);
  }
  Result<Flags> parsed = Flags::parse("serve", all, valued, booleans);
  if (!parsed) return usage_error("serve", parsed.error().message());
  // The log: every line on standard error, from the notes on the environment on.
  Result<server::LogFormat> log_format =
      server::parse_log_format(parsed->get_or("log-format", "text"));
  if (!log_format)
    return usage_error("serve", "flag --log-format: " + log_format.error().message());
  Result<server::LogLevel> log_level = server::parse_log_level(parsed->get_or("log-level", "info"));
  if (!log_level) return usage_error("serve", "flag --log-level: " + log_level.error().message());
  const server::Log log = server::make_log(*log_format, *log_level, [](const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  });
  for (const std::string& note : env->notes) log(server::LogLevel::Warn, note);
  const Flags& flags = *parsed;
  if (!flags.positional().empty()) {
    return usage_error("serve", "unexpected argument \"" + flags.positional()[0] + "\"");
  }
  if (const std::optional<std::string> path = flags.get("check-config")) {
    return check_config(*path, flags.has("merge-domains"));
  }
  server::ServeOptions o{.version = kVersion, .commit = kCommit, .log = log};
  const std::optional<std::string> config = flags.get("config");
  if (!config) return usage_error("serve", "flag --config: needed (a file or a directory)");
  o.config_path = *config;
  Result<std::uint64_t> max_keys = flags.get_uint("max-keys-per-rule", 100'000, 1, 1u << 30);
  Result<double> reload_every = flags.get_seconds("reload-every", 1.0, 0.01);
  Result<double> request_timeout = flags.get_seconds("request-timeout", 1.0, 0.0001);
  for (const auto* r : {&reload_every, &request_timeout}) {
    if (!*r) return usage_error("serve", r->error().message());
  }
  if (!max_keys) return usage_error("serve", max_keys.error().message());
  o.max_keys_per_rule = *max_keys;
  o.reload_every = seconds(*reload_every);
  if (flags.has("response-headers") && flags.has("ietf-response-headers")) {
    return usage_error("serve",
                       "flags --response-headers and --ietf-response-headers: choose one of them");
  }
  o.answer.headers = flags.has("response-headers")        ? server::ResponseHeaders::Envoy
                     : flags.has("ietf-response-headers") ? server::ResponseHeaders::Ietf
                                                          : server::ResponseHeaders::None;
  for (const auto& [flag, name] : {std::pair{"limit-header", &o.answer.limit_header},
                                   std::pair{"remaining-header", &o.answer.remaining_header},
                                   std::pair{"reset-header", &o.answer.reset_header}}) {
    if (const std::optional<std::string> v = flags.get(flag)) {
      if (!flags.has("response-headers")) {
        return usage_error("serve", "flag --" + std::string(flag) + ": needs --response-headers");
      }
      if (Result<void> ok = server::check_header_name(*v); !ok) {
        return usage_error("serve", "flag --" + std::string(flag) + ": " + ok.error().message());
      }
      *name = *v;
    }
  }
  o.answer.dynamic_metadata = flags.has("response-dynamic-metadata");
  o.answer.request_timeout = seconds(*request_timeout);
  o.shadow_mode = flags.has("shadow-mode");
  o.quota_mode = flags.has("quota-mode");
  o.start_without_config = flags.has("start-without-config");
  o.merge_domains = flags.has("merge-domains");
  o.reuse_port = flags.has("reuse-port");
  if (const std::optional<std::string> r = flags.get("near-limit-ratio")) {
    Result<float> ratio = server::parse_ratio(*r);
    if (!ratio) return usage_error("serve", "flag --near-limit-ratio: " + ratio.error().message());
    o.near_limit_ratio = *ratio;
  }
  o.grpc_address = flags.get_or("grpc", "127.0.0.1:8081");
  const std::string http = flags.get_or("http", "127.0.0.1:8080");
  o.http = http != "off";
  if (o.http) {
    const auto at = server::parse_host_port(http);
    if (!at) return usage_error("serve", "flag --http: " + at.error().message() + " or off");
    std::tie(o.http_host, o.http_port) = *at;
  }
  for (const char* only :
       {"on-redis-failure", "redis-timeout", "request-timeout", "redis-threads",
        "redis-password-file", "cache-key-prefix", "redis-tls-ca", "redis-tls-cert",
        "redis-tls-key", "redis-tls-skip-hostname-verification"}) {
    if ((flags.get(only) || flags.has(only)) && !flags.get("redis")) {
      return usage_error("serve", "flag --" + std::string(only) + ": needs --redis URL");
    }
  }
  if (const std::optional<std::string> url = flags.get("redis")) {
    server::RedisBackendOptions& r = o.redis.emplace(server::RedisBackendOptions{.url = *url});
    Result<std::string> password =
        flags.get_secret("redis-password-file", "FLOODGATE_REDIS_PASSWORD");
    if (!password) return usage_error("serve", password.error().message());
    r.password = *password;
    // envoyproxy/ratelimit's REDIS_AUTH, for the Redis its REDIS_URL named.
    if (r.password.empty() && env->redis_password && !present.contains("redis")) {
      r.password = *env->redis_password;
    }
    r.cache_key_prefix = flags.get_or("cache-key-prefix", "");
    r.tls_ca_file = flags.get_or("redis-tls-ca", "");
    r.tls_cert_file = flags.get_or("redis-tls-cert", "");
    r.tls_key_file = flags.get_or("redis-tls-key", "");
    r.tls_verify_hostname = !flags.has("redis-tls-skip-hostname-verification");
    const std::string policy_name = flags.get_or("on-redis-failure", "fallback");
    // "error": the call fails, and Envoy's failure_mode_deny decides (envoyproxy/ratelimit's way).
    o.answer.fail_on_backend_failure = policy_name == "error";
    Result<OnRedisFailure> policy =
        parse_on_redis_failure(o.answer.fail_on_backend_failure ? "fail-closed" : policy_name);
    if (!policy) {
      return usage_error("serve",
                         "flag --on-redis-failure: " + policy.error().message() + ", or error");
    }
    r.on_failure = *policy;
    Result<double> timeout = flags.get_seconds("redis-timeout", 0.1, 0.0001);
    if (!timeout) return usage_error("serve", timeout.error().message());
    r.command_timeout = seconds(*timeout);
    Result<std::uint64_t> threads = flags.get_uint("redis-threads", 1024, 1, 16384);
    if (!threads) return usage_error("serve", threads.error().message());
    o.redis_threads = *threads;
  }
  if (Result<void> ran = server::run(std::move(o)); !ran)
    return usage_error("serve", ran.error().message());
  return kExitOk;
}

}  // namespace floodgate::app
