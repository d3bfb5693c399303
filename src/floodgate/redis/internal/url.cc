#include "floodgate/redis/internal/url.h"

#include <charconv>

#include "floodgate/core/internal/format.h"

namespace floodgate::internal {
namespace {

constexpr std::string_view kForms =
    "expected redis://host:port[/db], unix:///path/to.sock or "
    "redis+cluster://host:port[,host:port...]";

Error bad(std::string_view url, const std::string& why) {
  return Error("redis URL " + quoted_url(url) + ": " + why);
}

// The scheme of a URL that may hold credentials, with its "//"; empty for any other.
std::string_view scheme_with_credentials(std::string_view url) {
  for (const std::string_view scheme : {"redis+cluster://", "redis://"}) {
    if (url.starts_with(scheme)) return scheme;
  }
  return {};
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
  const std::string_view scheme = scheme_with_credentials(url);
  const std::string_view rest = url.substr(scheme.size());
  const auto at = rest.rfind('@');  // As parse_redis_url reads credentials.
  if (scheme.empty() || at == std::string_view::npos) return quoted(url, kNameBytes);
  const std::string_view credentials = rest.substr(0, at);
  const auto colon = credentials.find(':');
  const std::string_view user =
      colon == std::string_view::npos ? std::string_view() : credentials.substr(0, colon);
  if (credentials.size() == (colon == std::string_view::npos ? 0 : colon + 1)) {
    return quoted(url, kNameBytes);  // No password to hide.
  }
  std::string shown(scheme);
  shown += user;
  shown += ":***";
  shown += rest.substr(at);
  return quoted(shown, kNameBytes);
}

Result<RedisUrl> parse_redis_url(std::string_view url) {
  RedisUrl out;
  std::string_view rest;
  if (url.starts_with("unix://")) {
    rest = url.substr(7);
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
  if (url.starts_with("redis+cluster://")) {
    out.cluster = true;
    rest = url.substr(16);
  } else if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else {
    return bad(url, std::string(kForms));
  }
  // Credentials: everything before the last '@'.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      out.password = std::string(credentials);
    } else {
      out.username = std::string(credentials.substr(0, colon));
      out.password = std::string(credentials.substr(colon + 1));
    }
  }
  std::string_view hosts = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    hosts = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      Result<int> parsed = parse_db(url, db);
      if (!parsed) return parsed.error();
      out.db = *parsed;
    }
  }
  if (out.cluster && out.db != 0) return bad(url, "Redis Cluster has only database 0");
  while (true) {
    const auto comma = hosts.find(',');
    Result<Endpoint> e = parse_host_port(url, hosts.substr(0, comma));
    if (!e) return e.error();
    out.endpoints.push_back(std::move(*e));
    if (comma == std::string_view::npos) break;
    hosts = hosts.substr(comma + 1);
  }
  if (!out.cluster && out.endpoints.size() > 1) {
    return bad(url, "several hosts need redis+cluster:// (a standalone server has one address)");
  }
  return out;
}

}  // namespace floodgate::internal
