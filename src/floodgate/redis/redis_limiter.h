// `RedisLimiter`: one limit per key shared by every process that points at the same Redis (or
// Redis Cluster), with the decisions of floodgate's in-process limiters.
//
// Each call runs one Lua script on the server that holds the key, which reads the key's state,
// decides and writes the next state atomically; the client turns the script's answer into a
// `Decision` with the same rule code as `GcraLimiter` and `TokenBucketLimiter`, so for the same
// instants and costs the two decide alike (a differential test holds them to it). By default the
// instant is the server's own clock (`TIME`, read inside the script), so hosts with skewed clocks
// still share one timeline.
//
// Thread-safe: any number of threads may call any member at once. Concurrent calls on one
// connection are written as one pipeline; no thread runs in the background. A call waits for
// Redis's reply at most the command timeout from the write that sends it (and twice that in all,
// with a connect; see `command_timeout`): when Redis fails to answer, the limiter's
// `OnRedisFailure` policy decides, and says so in `RedisDecision::source`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "floodgate/core/algorithm.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"

namespace floodgate {

// The algorithms a `RedisLimiter` runs on the server: `Algorithm::Gcra` (the default) and
// `Algorithm::TokenBucket`, with the decisions of `GcraLimiter` and `TokenBucketLimiter`, and
// `Algorithm::EnvoyFixedWindow`, envoyproxy/ratelimit's window, whose period must be whole
// seconds or divide a second. `RedisLimiter::create` refuses the others.
constexpr bool runs_on_redis(Algorithm algorithm) noexcept {
  return algorithm == Algorithm::Gcra || algorithm == Algorithm::TokenBucket ||
         algorithm == Algorithm::EnvoyFixedWindow;
}

// What a `RedisLimiter` answers when Redis does not (down, hung, too slow, or an error reply).
enum class OnRedisFailure : std::uint8_t {
  // Admit: availability over the limit. A decision with `remaining()` 0 and no waits.
  FailOpen,
  // Deny, with `retry_after()` the time until the limiter will next try Redis.
  FailClosed,
  // Decide in an in-process `KeyedLimiter` of the same algorithm with `fallback_share` of each
  // key's quota, so that a fleet of n processes admits about n x share x quota while Redis is away.
  // The default.
  Fallback,
};

// Returns `url` (a `RedisLimiterOptions::url`) in double quotes, whole, with its password
// written *** (`redis://user:***@host`): the form floodgate's messages and logs show.
std::string quoted_redis_url(std::string_view url);

// Returns "fail-open", "fail-closed" or "fallback".
std::string_view to_string(OnRedisFailure policy) noexcept;

// Returns the policy `to_string` names `name`, or an error naming it and the choices.
Result<OnRedisFailure> parse_on_redis_failure(std::string_view name);

// Who made a decision.
enum class DecisionSource : std::uint8_t {
  Redis,       // The script, on the server.
  DenyCache,   // The local record of a denial that is still in force (no round trip).
  FailOpen,    // The failure policy: Redis did not answer.
  FailClosed,  // The failure policy: Redis did not answer.
  Fallback,    // The failure policy's in-process limiter: Redis did not answer.
};

// Returns "redis", "deny-cache", "fail-open", "fail-closed" or "fallback".
std::string_view to_string(DecisionSource source) noexcept;

// Why the failure policy decided a call.
enum class RedisFailure : std::uint8_t {
  None,         // It did not: Redis or the deny cache did.
  Timeout,      // Redis did not reply within the command timeout (or the caller's deadline).
  Unreachable,  // No connection: refused, reset, or still backing off after a failed connect.
  BreakerOpen,  // Not sent: the server's circuit breaker is open after repeated failures.
  ErrorReply,   // Redis answered with an error, or an answer the limiter cannot read.
  OutOfTime,    // Not sent: the caller's deadline had passed.
};
// How many `RedisFailure` values there are.
inline constexpr std::size_t kRedisFailures = 6;

// Returns "none", "timeout", "unreachable", "breaker-open", "error-reply" or "out-of-time".
std::string_view to_string(RedisFailure failure) noexcept;

// Where a `RedisLimiter` keeps its state, how it decides, and what it does when Redis does not
// answer. Checked by `RedisLimiter::create`.
struct RedisLimiterOptions {
  // redis://[[user]:password@]host[:port][/db], unix:///path/to.sock[?db=N],
  // redis+cluster://host:port[,host:port...] (seed nodes of a Redis Cluster), or
  // redis+sentinel://host[:port][,host[:port]...]/master-name[/db] (the Sentinels that watch the
  // master, port 26379 by default: the master is asked of them, and again when it fails or turns
  // out a replica). The user and password, the master's, are percent-decoded (a '%' itself is
  // %25).
  std::string url = "redis://127.0.0.1:6379";
  // Every key is stored as `prefix + key`. Limiters with different quotas or algorithms must use
  // different prefixes: a key's state is only meaningful under the rule that wrote it.
  std::string prefix = "floodgate:";
  // One of the algorithms that `runs_on_redis`.
  Algorithm algorithm = Algorithm::Gcra;
  // The quota of every key the resolver does not place.
  Quota default_quota = Quota::per_second(10);
  // Tiers: called on every call, outside any lock, to choose the key's quota (nothing: the
  // default). Keep it cheap; it runs before the round trip.
  std::function<std::optional<Quota>(std::string_view key)> resolver = nullptr;
  OnRedisFailure on_failure = OnRedisFailure::Fallback;
  // `Fallback`: the share of each key's count and burst that one process admits on its own,
  // in (0, 1]; both are rounded down, to at least 1.
  double fallback_share = 1.0;
  // Connections per server; concurrent calls on one connection share its round trips.
  std::size_t connections = 2;
  // The longest a call waits to connect, and for its reply, counted from the write that sends
  // it: a measure of Redis's round trip, not of the calls ahead of it. A call waits at most twice
  // the command timeout in all (the round trip ahead of it on its connection, then its own), plus
  // a connect. A healthy Redis on a busy host can take milliseconds; the timeout is for one that
  // is not healthy.
  Nanos connect_timeout = std::chrono::milliseconds(100);
  Nanos command_timeout = std::chrono::milliseconds(100);
  // The circuit breaker, one per server (per master of a cluster): after `breaker_failures`
  // consecutive failed calls, the limiter stops calling that server for `breaker_open_for`, then
  // lets one probe through at a time until one succeeds.
  std::uint32_t breaker_failures = 5;
  Nanos breaker_open_for = std::chrono::milliseconds(500);
  // After a failed connect, the wait before the next attempt: doubling from the first to the
  // second, reset by a success.
  Nanos reconnect_backoff_min = std::chrono::milliseconds(10);
  Nanos reconnect_backoff_max = std::chrono::seconds(1);
  // Added to every key's TTL. Keys expire on Redis's clock; with the `_at` forms, instants that
  // advance slower than real time (a paused test clock, a replay slower than its trace) would
  // otherwise see a key expire before its bucket is full, resetting its limit. At most 10 years.
  Nanos ttl_slack = Nanos::zero();
  // The deny cache: keys recently denied, answered locally until their `retry_after` has passed
  // for costs at least the denied one. At most this many keys; 0 turns it off.
  std::size_t deny_cache_keys = 65'536;
  // `Algorithm::EnvoyFixedWindow` only: count as envoyproxy/ratelimit counts, in its own keys, so
  // that its instances and these limiters share counts on one Redis: INCRBY on
  // `prefix + key + S`, S the window's start in Unix seconds on this host's clock (`key` is
  // upstream's descriptor key, "domain_k1_v1_k2_v2_"), which is created to expire a period later;
  // a peek reads it with GET. The period must be whole seconds.
  bool envoy_keys = false;
  // TLS, for a rediss:// URL (refused with any other): the CAs to verify the server with (PEM;
  // empty: the system's), a client certificate and its key (PEM) for a server that asks for one,
  // and whether the server's certificate must name the host connected to.
  std::string tls_ca_file = {};
  std::string tls_cert_file = {};
  std::string tls_key_file = {};
  bool tls_verify_hostname = true;
  // The AUTH password, when the URL has none: read from a file or the environment by the caller,
  // it stays out of the command line and of every message. A URL with a password as well is an
  // error.
  std::string password = {};
};

// A decision and where it came from.
struct [[nodiscard]] RedisDecision {
  // The answer: admitted or not, what is left, and when to retry.
  Decision decision;
  // The instant it was made at, in nanoseconds since the Unix epoch: the server's `TIME` for
  // `try_acquire` and `peek`, the caller's instant for the `_at` forms, and this host's
  // system clock for a server-time call that Redis did not answer.
  Instant at;
  DecisionSource source;
  // Why the failure policy decided (`source` FailOpen, FailClosed or Fallback); else None.
  RedisFailure failure = RedisFailure::None;

  // Reports whether the request was admitted.
  bool allowed() const noexcept { return decision.allowed(); }
  explicit operator bool() const noexcept { return allowed(); }
};

// Counters, readable while the limiter runs. Each is exact; together they are not a snapshot.
struct RedisLimiterStats {
  std::uint64_t decisions = 0;           // Every call.
  std::uint64_t redis_decisions = 0;     // Decided by the script.
  std::uint64_t deny_cache_hits = 0;     // Denied locally: round trips saved.
  std::uint64_t policy_decisions = 0;    // Decided by the failure policy.
  std::uint64_t errors = 0;              // Calls on which Redis failed (timeouts included).
  std::uint64_t breaker_refusals = 0;    // Calls not sent because the breaker was open.
  std::uint64_t deadline_refusals = 0;   // Calls not sent because their deadline had passed.
  std::uint64_t breaker_opens = 0;       // Times a server's circuit breaker opened.
  std::uint64_t round_trips = 0;         // Pipelined writes: many calls can share one.
  std::uint64_t commands = 0;            // Commands sent.
  std::uint64_t connects = 0;            // Successful connects.
  std::uint64_t noscript_retries = 0;    // EVALSHA answered NOSCRIPT, sent again as EVAL.
  std::uint64_t redirects = 0;           // Cluster: MOVED and ASK replies followed.
  std::uint64_t topology_refreshes = 0;  // Cluster: slot maps read (CLUSTER SLOTS).
};

class RedisLimiter;

// What `RedisLimiter::acquire_all` did: whether every call was admitted (and charged), and if
// not, which call refused. Each call's own answer is in its `RedisCall::decision`.
struct [[nodiscard]] RedisAllOrNone {
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);  // `refused` when none did.

  // The index of the call that refused (the first in the order given), or `kNone`.
  std::size_t refused = kNone;

  // Reports whether every call was admitted and charged.
  bool allowed() const noexcept { return refused == kNone; }
  // `allowed()`.
  explicit operator bool() const noexcept { return allowed(); }
  // Reports whether the call at `index` refused.
  bool refused_by(std::size_t index) const noexcept { return refused == index; }
};

// One call of `RedisLimiter::decide_all` or `RedisLimiter::acquire_all`: `cost` permits for `key`
// on `limiter`, under `quota` if given (see `try_acquire_with_quota_before`), else the key's.
struct RedisCall {
  RedisLimiter* limiter = nullptr;  // The limiter that decides it; must not be null.
  std::string_view key;             // The key, without the prefix; a view: keep it alive.
  std::uint64_t cost = 1;           // Permits asked for.
  bool peek = false;                // Report only, consuming nothing (`peek_before`).
  const Quota* quota = nullptr;     // The quota to decide under; null: the key's.
  // Out: the decision.
  RedisDecision decision = {Decision(Verdict::Denied, 0, 0, 1, Nanos::zero(), Nanos::zero()),
                            Instant{}, DecisionSource::FailClosed};
};

// One limit per key, kept in Redis. Thread-safe.
//
//   auto limiter = floodgate::RedisLimiter::create({.url = "redis://10.0.0.5:6379",
//                                                   .default_quota =
//                                                   floodgate::Quota::per_second(100)});
//   if (!limiter) die(limiter.error().message());
//   if (!(*limiter)->try_acquire(api_key)) reply_429();
//
// Keys expire when their bucket is full again (a quiet fleet leaves nothing behind). With the
// `_at` forms, the TTL runs on the server's clock: instants that advance slower than
// real time (a paused test clock) can see a key expire, and its bucket reset, early, unless
// `ttl_slack` covers the lag.
class RedisLimiter {
 public:
  // Returns a limiter for `options`, or an error naming the bad option (a URL that does not
  // parse, a fallback share outside (0, 1], a fixed window period that is neither whole seconds
  // nor a divisor of a second). Connects lazily (or at `connect`): a Redis that is down at
  // start is a failure of the first calls, not of `create`.
  static Result<std::unique_ptr<RedisLimiter>> create(RedisLimiterOptions options);

  // As `create`, for a limiter that runs on `share_with`'s connections: one pool and one circuit
  // breaker per server however many limiters share them (limiters of several prefixes,
  // algorithms or tiers, such as a service's rules), kept until the last of them is destroyed.
  // `options` must name the same deployment and connection settings as `share_with`'s (`url`,
  // `connections`, `connect_timeout`, `reconnect_backoff_*`, `breaker_*`); an error names the
  // first that differs. The other options are the new limiter's own. Each limiter's `stats`
  // then counts its own calls, and the shared connections' round trips, commands, connects,
  // script reloads, redirections and breaker openings, all limiters' together.
  static Result<std::unique_ptr<RedisLimiter>> create(RedisLimiterOptions options,
                                                      const RedisLimiter& share_with);

  ~RedisLimiter();
  RedisLimiter(const RedisLimiter&) = delete;
  RedisLimiter& operator=(const RedisLimiter&) = delete;

  // Admits `cost` permits for `key` at the server's current instant if they are available.
  RedisDecision try_acquire(std::string_view key, std::uint64_t cost = 1);

  // Admits `cost` permits for `key` at `now` (nanoseconds on the caller's own timeline, such as
  // a trace's) if they are available.
  RedisDecision try_acquire_at(std::string_view key, Instant now, std::uint64_t cost = 1);

  // Reports what `try_acquire(key, cost)` would decide, without consuming anything. Not cached.
  RedisDecision peek(std::string_view key, std::uint64_t cost = 1);

  // Reports what `try_acquire_at(key, now, cost)` would decide, without consuming anything.
  RedisDecision peek_at(std::string_view key, Instant now, std::uint64_t cost = 1);

  // As `try_acquire` and `peek`, for a caller with a budget of its own (a request that makes
  // several calls before its own deadline): each waits for Redis until `deadline` at the latest,
  // and within the bounds of `command_timeout`. A call whose deadline has passed is decided by
  // `on_failure` without a round trip (the deny cache still answers), and counted in
  // `deadline_refusals`, not in `errors`.
  RedisDecision try_acquire_before(std::string_view key,
                                   std::chrono::steady_clock::time_point deadline,
                                   std::uint64_t cost = 1);
  RedisDecision peek_before(std::string_view key, std::chrono::steady_clock::time_point deadline,
                            std::uint64_t cost = 1);

  // As `try_acquire_before` and `peek_before`, under `quota` instead of the key's (limits that
  // each call carries, as Envoy's per-descriptor limits; for the fixed window, calls with different
  // quotas on one key share its count). An algorithm other than the fixed window reads a state
  // written under another quota as its own: give one key one quota.
  RedisDecision try_acquire_with_quota_before(std::string_view key, const Quota& quota,
                                              std::chrono::steady_clock::time_point deadline,
                                              std::uint64_t cost = 1);
  RedisDecision peek_with_quota_before(std::string_view key, const Quota& quota,
                                       std::chrono::steady_clock::time_point deadline,
                                       std::uint64_t cost = 1);

  // Decides every call of `calls` at the server's current instant, waiting for Redis until
  // `deadline` at the latest: the calls to one server in one pipelined write, so a request that
  // checks several limits pays one round trip for all (one per server on a cluster, or per set
  // of connections among the calls' limiters). Each call is decided as its limiter alone would
  // decide it, counted in that limiter's stats; the timeout is the shortest of their
  // `command_timeout`s.
  static void decide_all(std::span<RedisCall> calls,
                         std::chrono::steady_clock::time_point deadline =
                             std::chrono::steady_clock::time_point::max());

  // Takes every call's cost from its key, all or none, across the fleet: one script on one
  // server reads every key's state, decides each call at one instant (the server's `TIME`) and
  // writes the new states only if every call is admitted. A global limit and a per-client limit
  // are then charged both or neither, whatever other processes do at the same time, in one round
  // trip. The result names the call that refused, the first in the order given. Each call's
  // answer goes to its `decision`, as the in-process `acquire_all_at` gives them
  // (floodgate/keyed/acquire_all.h): the refusing call's own answer, with the wait a retry needs;
  // every other call's permits left after the outcome (its answer for a cost of 0); when all
  // were admitted, each call's answer.
  //
  // Returns an error, sending nothing, unless: there are 1 to 16 calls, none a peek, none with a
  // null limiter; every limiter runs `Algorithm::Gcra` without `envoy_keys`; every limiter runs
  // on one set of connections (the same limiter, or made with `create(options, share_with)`);
  // and, on a Redis Cluster, every stored key (`prefix + key`) is in one hash slot. For that,
  // give every key one hash tag, such as `"{fleet}"` for the global limit's key and
  // `"{fleet}:" + client` for each client's: they then all live on the node that holds that
  // slot, which takes all of these calls' load. A standalone server or a Sentinel's master holds
  // any keys.
  //
  // When Redis does not answer by `deadline` (or within the limiters' `command_timeout`), or
  // its breaker is open, each call's limiter's `on_failure` decides, all or none as well: every
  // call is first asked without being charged, and only if all are admitted is each charged.
  // Under `Fallback`, a concurrent call can take a later limit's last permits between the two,
  // leaving the earlier ones charged; the result then names the one that refused. Calls are not
  // answered from the deny cache. Each call is counted in its limiter's `stats`.
  static Result<RedisAllOrNone> acquire_all(std::span<RedisCall> calls,
                                            std::chrono::steady_clock::time_point deadline =
                                                std::chrono::steady_clock::time_point::max());

  // As `acquire_all`, at `now` (nanoseconds on the caller's own timeline) for every call.
  static Result<RedisAllOrNone> acquire_all_at(std::span<RedisCall> calls, Instant now,
                                               std::chrono::steady_clock::time_point deadline =
                                                   std::chrono::steady_clock::time_point::max());

  // Connects to every server the limiter calls (each master of a cluster, after reading its slot
  // map) and loads the limiter's scripts there (a GCRA limiter's include `acquire_all`'s), trying
  // again after failures until `timeout` has passed. Optional: calls connect on their own, but the
  // first call to a server then pays for the connect and the script's load within its
  // `command_timeout`. Call it at start, to take that cost out of the first calls and to learn that
  // Redis does not answer. Returns an error naming the server and the failure (also `last_error`;
  // no call is counted).
  Result<void> connect(Nanos timeout = std::chrono::seconds(1));

  // Returns the quota `key` is limited by.
  Quota quota_of(std::string_view key) const;

  // Returns the options the limiter was created with.
  const RedisLimiterOptions& options() const noexcept;

  // Returns the limiter's counters (see `RedisLimiterStats`).
  RedisLimiterStats stats() const;

  // Returns the latest failure's message, or an empty string if none has happened.
  std::string last_error() const;

 private:
  class Impl;
  explicit RedisLimiter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate
