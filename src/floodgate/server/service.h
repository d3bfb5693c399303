// `Service`: decides Envoy rate limit requests (a domain and a list of descriptors) under a
// `Config`, each limit's state kept by a `Backend` (in this process by default, or in Redis). The
// gRPC and HTTP endpoints of `floodgate serve` are thin layers over it. Thread-safe: any number of
// threads may call `should_rate_limit` while another installs a new configuration.
//
// Semantics are envoyproxy/ratelimit's: one status per request descriptor, in order; a descriptor
// with its own `limit` is limited by it (a fixed window) instead of by the configuration; a
// descriptor that no rule matches is OK without a limit; `hits_addend` of the descriptor (when
// present, 0 included: a check that counts nothing), else of the request, 0 meaning 1; a rule named
// in a matched rule's `replaces` is not applied; `unlimited` is always OK; a limit of 0 is always
// over; shadow mode of a rule answers its descriptor OK and counts what it would have denied, that
// of the whole service only the overall code; the overall code is OVER_LIMIT if any status is,
// quota-mode statuses only if all of them are; an own limit in a domain the configuration does not
// have limits nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/server/backend.h"
#include "floodgate/server/config.h"
#include "floodgate/server/metrics.h"

namespace floodgate::server {

// A request descriptor's own limit (Envoy's `RateLimitDescriptor.limit`).
struct LimitOverride {
  std::uint32_t requests_per_unit = 0;  // 0: always over the limit.
  Unit unit = Unit::Second;
};

// One descriptor of a request.
struct RequestDescriptor {
  std::vector<Entry> entries;
  std::optional<std::uint64_t> hits_addend;  // Present: this descriptor's hits (0: check only).
  std::optional<LimitOverride> limit;        // Present: limited by this, not the configuration.
};

struct Request {
  std::string_view domain;
  std::vector<RequestDescriptor> descriptors;
  std::uint32_t hits_addend = 0;  // 0: one hit.
  // The latest instant a backend (Redis) may be waited for; descriptors still undecided then are
  // decided by its failure policy without a round trip. State in this process never waits.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

enum class Code : std::uint8_t { Ok, OverLimit };

struct DescriptorStatus {
  Code code = Code::Ok;
  const Descriptor* rule = nullptr;  // The rule applied; null when none was, or `own_limit` was.
  std::optional<LimitOverride> own_limit;  // The descriptor's own limit, when it was applied.
  std::uint32_t limit_remaining = 0;
  // Until the limit is whole again: for Envoy's window (the default algorithm, and every own
  // limit) whole seconds to the window's end, from 1 to the unit, as envoyproxy/ratelimit says.
  Nanos duration_until_reset{0};
  // Over the limit, and shadow mode is on (the rule's: `code` is OK; the service's: `code` says
  // OVER_LIMIT and only the overall code is OK).
  bool shadowed = false;
  bool quota_mode = false;  // The rule's `quota_mode`, or the service's.
};

struct Response {
  Code overall = Code::Ok;
  std::vector<DescriptorStatus> statuses;
  // Descriptors the backend's failure policy decided (Redis did not answer in time).
  std::size_t backend_failures = 0;
  // The configuration the statuses' rules point into; keeps them alive.
  std::shared_ptr<const Config> config;
};

// Returns the fixed-window rate limit of `limit`, or an error naming the value if it cannot be
// enforced (see `validate`).
Result<RateLimit> rate_limit_of(const LimitOverride& limit);

struct ServiceOptions {
  // Most descriptors with state per rule; past it, new ones are decided without keeping state
  // (as if seen for the first time) until old ones are idle and dropped.
  std::size_t max_keys_per_rule = 100'000;
  // The overall code is always OK; each descriptor's status still says whether it is over (and
  // is counted as shadowed), as envoyproxy/ratelimit's SHADOW_MODE.
  bool shadow_mode = false;
  // Every rule in quota mode (envoyproxy/ratelimit's QUOTA_MODE): a request is over the limit only
  // if all its limited descriptors are.
  bool quota_mode = false;
  // Hits admitted past this share of the limit are counted as near it (NEAR_LIMIT_RATIO).
  float near_limit_ratio = 0.8f;
  // Where limits keep their state and who decides them; null: in this process
  // (`make_local_backend(max_keys_per_rule)`).
  std::shared_ptr<Backend> backend = nullptr;
};

class Service {
 public:
  // Returns a service for `config`, or the error of a rule whose state cannot be made.
  static Result<std::unique_ptr<Service>> create(std::shared_ptr<const Config> config,
                                                 ServiceOptions options);

  // Returns a service without a configuration yet (`configured()` false; every domain unknown
  // until `set_config`), for a server that starts while its configuration does not load;
  // `error` says why.
  static std::unique_ptr<Service> create_unconfigured(ServiceOptions options, std::string error);

  // Reports whether a configuration is installed; if not, `configuration_error` says why.
  bool configured() const { return configured_.load(std::memory_order_acquire); }
  std::string configuration_error() const;

  // Decides `request` at `now` (nanoseconds since the Unix epoch).
  Response should_rate_limit(const Request& request, Instant now);

  // Decides every request of `requests` at `now`, each as `should_rate_limit` decides it (in
  // order: two requests on one descriptor see each other), with one call to the backend for all
  // (on Redis, one round trip for the batch), waiting for it no later than the earliest deadline
  // among them. Returns the responses, in order.
  std::vector<Response> should_rate_limit_all(std::span<const Request* const> requests,
                                              Instant now);

  // Installs `config` for the requests that start after it. A rule whose definition (its place
  // in the tree, algorithm, unit, count, burst) did not change keeps its state. On error (a rule
  // whose state cannot be made) the previous configuration stays.
  Result<void> set_config(std::shared_ptr<const Config> config);

  std::shared_ptr<const Config> config() const;

  // Appends every rule's counters in Prometheus text format (floodgate_rule_*): per rule, and per
  // request descriptor for rules with `keyed_stats` (label `key`: envoyproxy/ratelimit's name for
  // its statistics, `Config::stats_key`). A rule's counters survive reloads while its id does.
  // Also each rule's values with state in this process (floodgate_rule_tracked_values).
  void write_metrics(std::string& out) const;

 private:
  struct Counted {
    std::string label;  // The `rule` label: the rule's id, or its identity if another shares it.
    std::shared_ptr<RuleCounters> rule;
    std::shared_ptr<DetailedCounters> values;  // Rules with `keyed_stats` only.
  };
  struct Snapshot {
    std::shared_ptr<const Config> config;
    std::unordered_map<const Descriptor*, std::shared_ptr<RuleState>> states;
    std::unordered_map<const Descriptor*, Counted> counters;
    // Descriptors' own limits, counted per domain of the configuration (in other domains they
    // limit nothing).
    std::unordered_map<std::string, Counted> override_counters;
  };

  // What one call took of its limit, in whole hits: envoyproxy/ratelimit's "limit before and after
  // increase", with which it splits a call's hits into within, near and over.
  struct Usage {
    std::uint64_t hits = 0;
    std::uint64_t capacity = 0;  // The most hits the limit holds (the burst, for GCRA).
    std::uint64_t before = 0;    // Used before this call.
    std::uint64_t after = 0;     // Used after it (Envoy's window counts denied hits too).
  };

  // Counts `usage` for the rule, and for `stats_key` if not empty.
  static void count(const Counted& counted, const std::string& stats_key, const Usage& usage,
                    bool over, bool shadowed, float near_limit_ratio);

  // What each descriptor of a request is counted under, and its call to the backend if it needs
  // state.
  struct Applied {
    const Descriptor* rule = nullptr;  // The rule `Config::match` found, if any.
    const Counted* counted = nullptr;  // Null: no limit applies.
    RateLimit limit;
    std::uint64_t hits = 0;
    std::size_t call = SIZE_MAX;  // Its index in `calls`, if the backend decides it.
  };
  // A request being decided: its rules matched, the calls the backend decides, the response.
  struct Pending {
    std::shared_ptr<const Snapshot> snapshot;
    Response response;
    std::vector<Applied> applied;
    std::vector<std::string> keys;  // The calls' keys (their views point here).
    std::vector<BackendCall> calls;
  };
  // Matches `request`'s descriptors under `p.snapshot` and makes their calls.
  void prepare(const Request& request, Pending& p) const;
  // Makes `p.response` from the decided calls.
  void complete(const Request& request, Instant now, Pending& p) const;

  explicit Service(ServiceOptions options);

  std::shared_ptr<const Snapshot> snapshot() const;
  // Decides descriptor `d` of `request`, which has its own limit, into `status`; returns
  // whether it is over the limit.
  Result<std::shared_ptr<const Snapshot>> build(std::shared_ptr<const Config> config,
                                                const Snapshot* previous) const;

  const ServiceOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // Guarded by mu_.
  const std::shared_ptr<Backend> backend_;
  std::atomic<bool> configured_{true};
  std::string configuration_error_;  // Guarded by mu_.
};

// Returns the state key of a request descriptor with its own `limit` of `unit`: the unit (a digit,
// 0 for second to 6 for year), '|', then the domain, keys and values, each length-prefixed. One
// container holds the windows of every domain and limit; as in envoyproxy/ratelimit, own limits
// of one unit and different counts share one count.
std::string override_key(std::string_view domain, Unit unit, std::span<const Entry> entries);

// Returns a rule's definition as text: its identity, algorithm, unit, count and burst. Equal texts
// may share state across configurations, and Redis keys are prefixed with it.
std::string definition_of(const Descriptor& rule);

}  // namespace floodgate::server
