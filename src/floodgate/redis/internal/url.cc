#include "floodgate/redis/internal/url.h"

#include <charconv>
#include <optional>

#include "floodgate/core/internal/format.h"

namespace floodgate::internal {
namespace {

constexpr std::string_view kForms =
    "expected redis://host:port[/db], unix:///path/to.sock, "
    "redis+cluster://host:port[,host:port...] or "
    "redis+sentinel://host:port[,host:port...]/master-name[/db] (rediss: TLS)";

Error bad(std::string_view url, const std::string& why) {
  return Error("redis URL " + quoted_url(url) + ": " + why);
}

// A redis:// or redis+cluster:// URL cut into its scheme (with "//"), its credentials
// (everything before the last '@': "user:password", or a password alone) and the rest, the hosts
// and the database.
struct NetworkUrl {
  std::string_view scheme;
  std::string_view username;
  std::string_view password;
  std::string_view hosts_and_db;
};

std::optional<NetworkUrl> split_network_url(std::string_view url) {
  NetworkUrl out;
  for (const std::string_view scheme : {"redis+cluster://", "redis+sentinel://", "redis://",
                                        "rediss+cluster://", "rediss+sentinel://", "rediss://"}) {
    if (url.starts_with(scheme)) out.scheme = scheme;
  }
  if (out.scheme.empty()) return std::nullopt;
  out.hosts_and_db = url.substr(out.scheme.size());
  if (const auto at = out.hosts_and_db.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = out.hosts_and_db.substr(0, at);
    out.hosts_and_db = out.hosts_and_db.substr(at + 1);
    const auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      out.password = credentials;
    } else {
      out.username = credentials.substr(0, colon);
      out.password = credentials.substr(colon + 1);
    }
  }
  return out;
}

// Returns `text` with each %XX replaced by its byte, as URLs spell what they cannot hold (redis-py
// and go-redis decode credentials the same way), or nothing if a '%' starts no such pair.
std::optional<std::string> percent_decoded(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex(text[i + 1]);
    const int low = hex(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// Parses a decimal in [low, high], or returns false.
bool parse_int(std::string_view text, long low, long high, long& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= low && out <= high;
}

Result<Endpoint> parse_host_port(std::string_view url, std::string_view text) {
  Endpoint e;
  std::string_view port;
  if (text.starts_with('[')) {  // [IPv6]:port
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad(url, "unclosed '[' in the host");
    e.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return bad(url, "expected ':port' after ']'");
      port = rest.substr(1);
      if (port.empty()) return bad(url, "empty port");
    }
  } else {
    const auto colon = text.rfind(':');
    e.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      if (port.empty()) return bad(url, "empty port");
    }
  }
  if (e.host.empty()) return bad(url, "no host");
  if (!port.empty()) {
    long value = 0;
    if (!parse_int(port, 1, 65535, value)) {
      return bad(url, "port must be 1 to 65535 (got " + quoted(port) + ")");
    }
    e.port = static_cast<int>(value);
  }
  return e;
}

Result<int> parse_db(std::string_view url, std::string_view text) {
  long value = 0;
  if (!parse_int(text, 0, 1'000'000, value)) {
    return bad(url, "the database must be a number from 0 (got " + quoted(text) + ")");
  }
  return static_cast<int>(value);
}

}  // namespace

std::string quoted_url(std::string_view url) {
  const std::optional<NetworkUrl> parts = split_network_url(url);
  if (!parts || parts->password.empty()) return quoted(url, kNameBytes);
  std::string shown(parts->scheme);
  shown += parts->username;
  shown += ":***@";
  shown += parts->hosts_and_db;
  return quoted(shown, kNameBytes);
}

Result<RedisUrl> parse_redis_url(std::string_view url) {
  RedisUrl out;
  if (url.starts_with("unix://")) {
    const std::string_view rest = url.substr(7);
    const auto query = rest.find('?');
    Endpoint e;
    e.path = std::string(rest.substr(0, query));
    if (e.path.empty() || e.path[0] != '/') {
      return bad(url, "a Unix socket needs an absolute path, as unix:///path/to.sock");
    }
    if (query != std::string_view::npos) {
      const std::string_view q = rest.substr(query + 1);
      if (!q.starts_with("db=")) return bad(url, "the only query parameter is db=N");
      Result<int> db = parse_db(url, q.substr(3));
      if (!db) return db.error();
      out.db = *db;
    }
    out.endpoints.push_back(std::move(e));
    return out;
  }
  const std::optional<NetworkUrl> parts = split_network_url(url);
  if (!parts) return bad(url, std::string(kForms));
  out.tls = parts->scheme.starts_with("rediss");
  out.cluster = parts->scheme.find("+cluster") != std::string_view::npos;
  const bool sentinel = parts->scheme.find("+sentinel") != std::string_view::npos;
  const std::optional<std::string> username = percent_decoded(parts->username);
  const std::optional<std::string> password = percent_decoded(parts->password);
  if (!username || !password) {
    return bad(url, "a '%' in the user or password starts no %XX pair (write a '%' itself as %25)");
  }
  out.username = *username;
  out.password = *password;
  const std::string_view rest = parts->hosts_and_db;
  if (const auto query = rest.find('?'); query != std::string_view::npos) {
    return bad(url, "query parameters are not supported (got " + quoted(rest.substr(query)) +
                        "); timeouts and pools are the limiter's options");
  }
  std::string_view hosts = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    hosts = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (sentinel) {
      const auto next = db.find('/');
      out.master = std::string(db.substr(0, next));
      db = next == std::string_view::npos ? std::string_view() : db.substr(next + 1);
    }
    if (!db.empty()) {
      Result<int> parsed = parse_db(url, db);
      if (!parsed) return parsed.error();
      out.db = *parsed;
    }
  }
  if (out.cluster && out.db != 0) return bad(url, "Redis Cluster has only database 0");
  if (sentinel && out.master.empty()) {
    return bad(url, "Sentinel needs the master's name: redis+sentinel://host:port/master-name");
  }
  while (true) {
    const auto comma = hosts.find(',');
    const std::string_view host = hosts.substr(0, comma);
    Result<Endpoint> e = parse_host_port(url, host);
    if (!e) return e.error();
    // Sentinel's own port, when none is written.
    const bool has_port =
        host.starts_with('[') ? !host.ends_with(']') : host.find(':') != std::string_view::npos;
    if (sentinel && !has_port) e->port = 26379;
    out.endpoints.push_back(std::move(*e));
    if (comma == std::string_view::npos) break;
    hosts = hosts.substr(comma + 1);
  }
  if (!out.cluster && !sentinel && out.endpoints.size() > 1) {
    return bad(url, "several hosts need redis+cluster:// (a standalone server has one address)");
  }
  return out;
}

}  // namespace floodgate::internal
