// Redis URLs: `redis://[[user]:password@]host[:port][/db]`, `unix:///path/to.sock[?db=N]`,
// `redis+cluster://host:port[,host:port...]` and
// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]` (the
// credentials are the master's); `rediss` instead of `redis` in each: TLS. Not part of the public
// API; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/connection.h"

namespace floodgate::internal {

struct RedisUrl {
  bool tls = false;                 // rediss://, rediss+cluster://, rediss+sentinel://.
  bool cluster = false;             // redis+cluster://: the endpoints are seed nodes.
  std::string master;               // redis+sentinel://: the master's name; the endpoints are
                                    // Sentinels (port 26379 unless given).
  std::vector<Endpoint> endpoints;  // One, unless `cluster` or a `master` is named.
  int db = 0;                       // SELECTed after connecting when not 0.
  std::string username;             // AUTH username (Redis 6 ACLs), may be empty.
  std::string password;             // AUTH password; empty: no AUTH.
};

// Parses `url`, or returns an error that quotes it (as `quoted_url` does) and names what is
// wrong.
Result<RedisUrl> parse_redis_url(std::string_view url);

// Returns `url` in double quotes for a message or a report, whole (a socket path or a list of
// cluster seeds is not cut short), with the password of a redis:// or redis+cluster:// URL
// written as "***", so that a log line never holds it.
std::string quoted_url(std::string_view url);

}  // namespace floodgate::internal
