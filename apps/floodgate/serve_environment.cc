#include "serve_environment.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string_view>
#include <tuple>

#include "floodgate/core/internal/format.h"
#include "floodgate/server/rls.h"
#include "floodgate/server/serve.h"

namespace floodgate::app {
namespace {

// How a set variable is read, for messages.
std::string named(std::string_view name, const std::string& value) {
  return "environment " + std::string(name) + "=" + internal::quoted(value);
}

// Reads a boolean as Go's strconv.ParseBool does (envoyproxy/ratelimit's settings are read so).
Result<bool> boolean(std::string_view name, const std::string& value) {
  for (const std::string_view yes : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (value == yes) return true;
  }
  for (const std::string_view no : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (value == no) return false;
  }
  return Error(named(name, value) + ": not true or false");
}

Result<int> port(std::string_view name, const std::string& value) {
  int n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < 0 ||
      n > 65535) {
    return Error(named(name, value) + ": not a port from 0 to 65535");
  }
  return n;
}

// Returns `text` percent-encoded for the user or password of a URL.
std::string percent_encoded(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      constexpr std::string_view kHex = "0123456789ABCDEF";
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Settings that are read and not applied, and why; an error when ignoring them would change what
// is limited, or where.
struct Unsupported {
  std::string_view name;
  bool fatal;  // Only when set to something other than `harmless`.
  std::string_view harmless;
  std::string_view why;
};

constexpr std::array kUnsupported = {
    Unsupported{"BACKEND_TYPE", true, "redis",
                "floodgate keeps limits in this process or in Redis (memcache is not supported)"},
    Unsupported{"CONFIG_TYPE", true, "FILE",
                "floodgate reads its configuration from files (xDS is not supported)"},
    Unsupported{"GRPC_UDS", true, "", "floodgate listens for gRPC on TCP only (use --grpc)"},
    Unsupported{"GRPC_SERVER_USE_TLS", true, "false",
                "floodgate's gRPC endpoint is plaintext (terminate TLS in front of it)"},
    Unsupported{"REDIS_SENTINEL_AUTH", true, "",
                "a password for the Sentinels themselves is not supported yet"},
    Unsupported{"REDIS_PERSECOND", true, "false",
                "a second Redis for per-second limits is not supported (one --redis holds all)"},
    Unsupported{"STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT", true, "false",
                "Envoy's window always counts every hit in floodgate (use algorithm: "
                "fixed-window or gcra for limits that count only what they admit)"},
    Unsupported{"USE_STATSD", false, "false",
                "statsd is not supported; the same counters are at GET /metrics (Prometheus)"},
    Unsupported{"USE_DOG_STATSD", false, "false", "statsd is not supported; see GET /metrics"},
    Unsupported{"USE_PROMETHEUS", false, "",
                "floodgate serves Prometheus metrics at GET /metrics on the HTTP port"},
    Unsupported{"PROMETHEUS_ADDR", false, "", "metrics are at GET /metrics on the HTTP port"},
    Unsupported{"DEBUG_HOST", false, "", "there is no debug port"},
    Unsupported{"DEBUG_PORT", false, "", "there is no debug port"},
    Unsupported{"LOG_LEVEL", false, "", "log levels are not supported yet"},
    Unsupported{"LOG_FORMAT", false, "", "log formats are not supported yet"},
    Unsupported{"TRACING_ENABLED", false, "false", "tracing is not supported"},
    Unsupported{"REDIS_POOL_SIZE", false, "",
                "floodgate pipelines every call on 2 connections per Redis server"},
    Unsupported{"REDIS_PIPELINE_WINDOW", false, "", "floodgate always pipelines concurrent calls"},
    Unsupported{"REDIS_PIPELINE_LIMIT", false, "", "floodgate always pipelines concurrent calls"},
    Unsupported{"REDIS_TIMEOUT", false, "",
                "the wait for Redis is --redis-timeout per round trip and --request-timeout per "
                "request"},
    Unsupported{"EXPIRATION_JITTER_MAX_SECONDS", false, "",
                "floodgate's Redis keys expire when their window ends"},
    Unsupported{"LOCAL_CACHE_SIZE_IN_BYTES", false, "",
                "floodgate keeps its own cache of denials that are still in force"},
    Unsupported{"RUNTIME_IGNOREDOTFILES", false, "false",
                "floodgate reads the *.yaml and *.yml files of the directory"},
};

}  // namespace

Result<EnvoyEnvironment> read_envoy_environment(
    const std::set<std::string, std::less<>>& given,
    const std::function<std::optional<std::string>(std::string_view)>& getenv) {
  const auto get = [&](std::string_view name) -> std::optional<std::string> {
    if (getenv) return getenv(name);
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  EnvoyEnvironment env;
  const auto set = [&](std::string_view flag, std::string value) {
    if (!given.contains(flag)) env.flags.emplace_back(std::string(flag), std::move(value));
  };
  const auto note = [&](std::string_view name, const std::string& value, std::string_view why) {
    env.notes.push_back(named(name, value) + ": not applied (" + std::string(why) + ")");
  };

  // The configuration: RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY, as upstream joins
  // them.
  const std::optional<std::string> root = get("RUNTIME_ROOT");
  const std::optional<std::string> sub = get("RUNTIME_SUBDIRECTORY");
  if (root || sub) {
    std::string path = root.value_or("/srv/runtime_data/current");
    for (const std::string& part :
         {sub.value_or(""), get("RUNTIME_APPDIRECTORY").value_or("config")}) {
      if (part.empty()) continue;
      if (!path.ends_with('/')) path += '/';
      path += part;
    }
    set("config", path);
  }
  if (const std::optional<std::string> v = get("RUNTIME_WATCH_ROOT")) {
    // Either way floodgate sees a changed file and a swapped symbolic link.
    if (Result<bool> b = boolean("RUNTIME_WATCH_ROOT", *v); !b) return b.error();
  }
  // Where to listen: upstream listens on every address by default.
  for (const auto& [flag, host_name, port_name, default_port] :
       {std::tuple{"grpc", "GRPC_HOST", "GRPC_PORT", 8081},
        std::tuple{"http", "HOST", "PORT", 8080}}) {
    const std::optional<std::string> host = get(host_name);
    const std::optional<std::string> p = get(port_name);
    if (!host && !p) continue;
    int n = default_port;
    if (p) {
      Result<int> parsed = port(port_name, *p);
      if (!parsed) return parsed.error();
      n = *parsed;
    }
    const std::string h = host.value_or("0.0.0.0");
    if (h.empty()) return Error(named(host_name, h) + ": empty");
    set(flag, (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(n));
  }

  // Redis.
  if (const std::optional<std::string> url = get("REDIS_URL")) {
    const std::string type = get("REDIS_TYPE").value_or("SINGLE");
    const std::string socket = get("REDIS_SOCKET_TYPE").value_or("unix");
    std::string user;
    if (const std::optional<std::string> auth = get("REDIS_AUTH"); auth && !auth->empty()) {
      // "user:password", or a password alone, as upstream reads it.
      if (const std::size_t colon = auth->find(':'); colon != std::string::npos) {
        user = percent_encoded(auth->substr(0, colon)) + ":" +
               percent_encoded(auth->substr(colon + 1)) + "@";
      } else {
        env.redis_password = *auth;
      }
    }
    std::string lower = type;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (url->empty()) return Error(named("REDIS_URL", *url) + ": empty");
    if (lower == "single") {
      if (socket == "unix") {
        if (!user.empty()) {
          return Error(named("REDIS_AUTH", "***") +
                       ": a user over a unix socket is not supported (give the password alone)");
        }
        set("redis", "unix://" + *url);
      } else if (socket == "tcp") {
        set("redis", "redis://" + user + *url);
      } else {
        return Error(named("REDIS_SOCKET_TYPE", socket) + ": not tcp or unix");
      }
    } else if (lower == "cluster") {
      if (socket != "tcp") {
        return Error(named("REDIS_SOCKET_TYPE", socket) + ": a cluster is reached over tcp");
      }
      set("redis", "redis+cluster://" + user + *url);
    } else if (lower == "sentinel") {
      // Upstream's form: "master-name,sentinel:port[,sentinel:port...]".
      const std::size_t comma = url->find(',');
      if (comma == std::string::npos || comma == 0 || comma + 1 == url->size()) {
        return Error(named("REDIS_URL", *url) +
                     ": with REDIS_TYPE=sentinel, master-name,host:port[,host:port...]");
      }
      set("redis",
          "redis+sentinel://" + user + url->substr(comma + 1) + "/" + url->substr(0, comma));
    } else {
      return Error(named("REDIS_TYPE", type) + ": not single, cluster or sentinel");
    }
  }
  // TLS: rediss:// and the files, as upstream's REDIS_TLS settings say.
  bool tls = false;
  if (const std::optional<std::string> v = get("REDIS_TLS")) {
    Result<bool> on = boolean("REDIS_TLS", *v);
    if (!on) return on.error();
    tls = *on;
  }
  for (auto& [flag, value] : env.flags) {
    if (flag == "redis" && tls && value.starts_with("redis")) value.insert(5, "s");
  }
  for (const auto& [name, flag] : {std::pair{"REDIS_TLS_CACERT", "redis-tls-ca"},
                                   std::pair{"REDIS_TLS_CLIENT_CERT", "redis-tls-cert"},
                                   std::pair{"REDIS_TLS_CLIENT_KEY", "redis-tls-key"}}) {
    const std::optional<std::string> v = get(name);
    if (!v || v->empty()) continue;
    if (!tls) {
      note(name, *v, "REDIS_TLS is not true");
      continue;
    }
    set(flag, *v);
  }
  if (const std::optional<std::string> v = get("REDIS_TLS_SKIP_HOSTNAME_VERIFICATION")) {
    Result<bool> skip = boolean("REDIS_TLS_SKIP_HOSTNAME_VERIFICATION", *v);
    if (!skip) return skip.error();
    if (*skip && tls) set("redis-tls-skip-hostname-verification", "");
  }
  if (const std::optional<std::string> prefix = get("CACHE_KEY_PREFIX")) {
    set("cache-key-prefix", *prefix);
  }

  // Answers.
  for (const auto& [name, flag] :
       {std::pair{"SHADOW_MODE", "shadow-mode"}, std::pair{"QUOTA_MODE", "quota-mode"},
        std::pair{"LIMIT_RESPONSE_HEADERS_ENABLED", "response-headers"},
        std::pair{"RESPONSE_DYNAMIC_METADATA", "response-dynamic-metadata"},
        std::pair{"FORCE_START_WITHOUT_INITIAL_CONFIG", "start-without-config"},
        std::pair{"MERGE_DOMAIN_CONFIG", "merge-domains"}}) {
    if (const std::optional<std::string> v = get(name)) {
      Result<bool> on = boolean(name, *v);
      if (!on) return on.error();
      if (*on) set(flag, "");
    }
  }
  const bool headers = std::any_of(env.flags.begin(), env.flags.end(),
                                   [](const auto& f) { return f.first == "response-headers"; }) ||
                       given.contains("response-headers");
  for (const auto& [name, flag] : {std::pair{"LIMIT_LIMIT_HEADER", "limit-header"},
                                   std::pair{"LIMIT_REMAINING_HEADER", "remaining-header"},
                                   std::pair{"LIMIT_RESET_HEADER", "reset-header"}}) {
    const std::optional<std::string> v = get(name);
    if (!v) continue;
    if (Result<void> ok = server::check_header_name(*v); !ok) {
      return Error(named(name, *v) + ": " + ok.error().message());
    }
    if (headers) {
      set(flag, *v);
    } else {
      note(name, *v, "LIMIT_RESPONSE_HEADERS_ENABLED is not true");
    }
  }
  if (const std::optional<std::string> v = get("NEAR_LIMIT_RATIO")) {
    if (Result<float> ratio = server::parse_ratio(*v); !ratio) {
      return Error(named("NEAR_LIMIT_RATIO", *v) + ": " + ratio.error().message());
    }
    set("near-limit-ratio", *v);
  }

  for (const Unsupported& u : kUnsupported) {
    const std::optional<std::string> v = get(u.name);
    if (!v || v->empty()) continue;
    std::string lower = *v;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string harmless(u.harmless);
    for (char& c : harmless) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == harmless) continue;
    // A boolean that says false asks for nothing.
    if (Result<bool> b = boolean(u.name, *v); b && !*b) continue;
    if (u.fatal) return Error(named(u.name, *v) + ": " + std::string(u.why));
    note(u.name, *v, u.why);
  }
  return env;
}

}  // namespace floodgate::app
