// `RedisClient`: runs floodgate's scripts and commands on a Redis deployment: one standalone
// server, or a Redis Cluster whose slots it routes. Not part of the public API. Thread-safe.
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
#include "floodgate/redis/internal/tls.h"
#include "floodgate/redis/internal/url.h"

namespace floodgate::internal {

struct ClientOptions {
  std::size_t connections = 2;  // Per server.
  std::chrono::nanoseconds connect_timeout = std::chrono::milliseconds(5);
  std::chrono::nanoseconds min_backoff = std::chrono::milliseconds(10);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(1);
  // Per server: consecutive failures that open its breaker, and for how long.
  std::uint32_t breaker_failures = 5;
  std::chrono::nanoseconds breaker_open_for = std::chrono::milliseconds(500);
  std::shared_ptr<const TlsContext> tls = nullptr;  // TLS on every connection; null: none.
};

// Counters; each exact, together not a snapshot.
struct ClientStats {
  std::uint64_t round_trips = 0;    // Batches written and read (pipelining puts many calls in one).
  std::uint64_t commands = 0;       // Commands sent.
  std::uint64_t connects = 0;       // Successful connects.
  std::uint64_t noscript = 0;       // EVALSHA answered NOSCRIPT and sent again as EVAL.
  std::uint64_t breaker_opens = 0;  // Times a server's circuit breaker opened.
  std::uint64_t redirects = 0;      // Cluster: MOVED and ASK replies followed.
  std::uint64_t refreshes = 0;      // Cluster: slot maps read with CLUSTER SLOTS.
};

// What came of running a script.
struct ScriptOutcome {
  // The reply (an error reply from the script or the server is a reply), or why none came.
  Result<Reply> reply;
  // Nothing was sent: the server's circuit breaker is open.
  bool refused = false;
};

// One call of a batch (`RedisClient::run_batch`): a script with KEYS = `key` then `other_keys`
// (all on `key`'s slot) and ARGV = `args`, or `commands` (each one RESP command, as
// `append_command` writes it, all on `key`'s slot). What it names must outlive the batch.
struct BatchItem {
  std::string_view key;
  std::span<const std::string_view> other_keys = {};
  const Script* script = nullptr;  // Null: `commands`.
  std::span<const std::string_view> args = {};
  std::span<const std::string> commands = {};
  // Out: the script's reply, or the last command's.
  ScriptOutcome outcome = {Error("not run"), false};
};

class RedisClient {
 public:
  virtual ~RedisClient() = default;

  // Runs every item of `items` on the server that holds its key, those on one server in one
  // pipelined write, and sets each one's outcome. A script goes as EVALSHA, and as EVAL when the
  // server does not have it (after a restart, a failover or SCRIPT FLUSH), which also loads it
  // there. No reply by `deadline`, or `timeout` after the write that sends it, is an error. Items
  // that a cluster redirects, and scripts the server does not have, take one more round trip.
  virtual void run_batch(std::span<BatchItem* const> items, Deadline deadline,
                         std::chrono::nanoseconds timeout) = 0;

  // Connects every connection to every server that runs scripts (each master of a cluster,
  // after reading its slot map) and loads `scripts` there, trying again after a failure until
  // `deadline`. Returns an error naming the server and what failed.
  virtual Result<void> prepare(std::span<const Script* const> scripts, Deadline deadline) = 0;

  virtual ClientStats stats() const = 0;
};

// Returns a client for the standalone server `url` names. Connects lazily.
std::unique_ptr<RedisClient> make_standalone_client(const RedisUrl& url,
                                                    const ClientOptions& options);

// Returns a client for the Redis Cluster whose seed nodes `url` names. Reads the slot map on the
// first call, and again after a redirection or a failure (at most every 100 ms).
std::unique_ptr<RedisClient> make_cluster_client(const RedisUrl& url, const ClientOptions& options);

// Returns a client for the master that the Sentinels `url` names watch (`url.master`). Asks them
// on the first call, and again when a call fails or meets a replica (at most every 100 ms).
std::unique_ptr<RedisClient> make_sentinel_client(const RedisUrl& url,
                                                  const ClientOptions& options);

// Returns the commands to send on each new connection for `url`'s credentials and database.
std::vector<std::vector<std::string>> connect_commands(const RedisUrl& url);

}  // namespace floodgate::internal
