// `Node`: one Redis server as floodgate's clients use it: a few pipelined connections taken in
// turn, a circuit breaker, and scripts run with EVALSHA, sent again as EVAL when the server does
// not have them. Not part of the public API. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/redis/internal/circuit_breaker.h"
#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/pipeline.h"

namespace floodgate::internal {

class Node {
 public:
  // `on_connect`: commands sent on every new connection (AUTH, SELECT).
  Node(Endpoint endpoint, const ClientOptions& options,
       std::vector<std::vector<std::string>> on_connect);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const Endpoint& endpoint() const noexcept { return endpoint_; }

  // Runs `items` (see `RedisClient::run_batch`) on this node in one write (and a second for the
  // scripts it answers NOSCRIPT to, sent again as EVAL), each preceded by ASKING when `asking`
  // (a slot this node is importing). Refused without sending while the breaker is open. The
  // batch feeds the breaker once: no reply, or an error reply about the server rather than the
  // key, is a failure; a cluster redirection is not.
  void run_batch(std::span<BatchItem* const> items, Deadline deadline,
                 std::chrono::nanoseconds timeout, bool asking);

  // Connects each of this node's connections and loads `scripts` with SCRIPT LOAD, past the
  // breaker, trying again after a failure until `deadline`.
  Result<void> prepare(std::span<const Script* const> scripts, Deadline deadline);

  // Sends one command, past the breaker, and returns its reply.
  Result<Reply> command(std::initializer_list<std::string_view> args, Deadline deadline);

  // Reports whether the breaker is refusing calls.
  bool breaker_open() const noexcept { return breaker_.is_open(); }

  // Adds this node's counters to `stats`.
  void add_stats(ClientStats& stats) const;

 private:
  Pipeline& next() noexcept;
  // The outcome of a call the open breaker refused.
  ScriptOutcome refused() const;
  const Endpoint endpoint_;
  std::vector<std::unique_ptr<Pipeline>> pipelines_;
  std::atomic<std::size_t> turn_{0};
  CircuitBreaker breaker_;
  std::atomic<std::uint64_t> noscript_{0};
};

// The nodes of a client that talks to several servers (a cluster's masters, the masters a
// Sentinel has named): one per address, made on first use and kept as long as the set, so that
// pointers to them stay valid. Thread-safe.
class NodeSet {
 public:
  NodeSet(ClientOptions options, std::vector<std::vector<std::string>> on_connect)
      : options_(std::move(options)), on_connect_(std::move(on_connect)) {}

  // Returns the node at `endpoint`, made if there is none.
  Node* at(const Endpoint& endpoint);
  // Returns every node made so far.
  std::vector<Node*> all() const;
  // Adds every node's counters to `stats`.
  void add_stats(ClientStats& stats) const;

 private:
  const ClientOptions options_;
  const std::vector<std::vector<std::string>> on_connect_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;  // Guarded by mu_; never shrinks.
};

// Reports whether an error reply concerns the key the script ran on (a value of another type, a
// state the script rejects), not the server's health.
bool is_key_error(const Reply& reply) noexcept;

// Reports whether an error reply is Redis Cluster's routing (MOVED, ASK) or a transient cluster
// state (TRYAGAIN, CLUSTERDOWN).
bool is_cluster_error(const Reply& reply) noexcept;

}  // namespace floodgate::internal
