// `RedisClient`: runs floodgate's scripts on a Redis deployment, standalone
// (a pool of pipelined connections) or, later, a cluster. Not part of the public API.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/connection.h"
#include "floodgate/redis/internal/resp.h"
#include "floodgate/redis/internal/scripts.h"
#include "floodgate/redis/internal/url.h"

namespace floodgate::internal {

struct ClientOptions {
  std::size_t connections = 2;  // Per server.
  std::chrono::nanoseconds connect_timeout = std::chrono::milliseconds(5);
  std::chrono::nanoseconds min_backoff = std::chrono::milliseconds(10);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(1);
};

// Counters; each exact, together not a snapshot.
struct ClientStats {
  std::uint64_t round_trips = 0;  // Batches written and read (pipelining puts many calls in one).
  std::uint64_t commands = 0;     // Commands sent.
  std::uint64_t connects = 0;     // Successful connects.
  std::uint64_t noscript = 0;     // EVALSHA answered NOSCRIPT and sent again as EVAL.
};

class RedisClient {
 public:
  virtual ~RedisClient() = default;

  // Runs `script` with KEYS[1] = `key` and ARGV = `args` on the server that holds `key`: EVALSHA,
  // and EVAL when the server does not have the script (after a restart, a failover or SCRIPT
  // FLUSH), which also loads it there. Returns the reply (an error reply from the script is a
  // reply), or an error if no reply came by `deadline`.
  virtual Result<Reply> run_script(const Script& script, std::string_view key,
                                   std::span<const std::string_view> args, Deadline deadline) = 0;

  virtual ClientStats stats() const = 0;
};

// Returns a client for the standalone server `url` names. Connects lazily.
std::unique_ptr<RedisClient> make_standalone_client(const RedisUrl& url,
                                                    const ClientOptions& options);

}  // namespace floodgate::internal
