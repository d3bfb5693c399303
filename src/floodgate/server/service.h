// `Service`: decides Envoy rate limit requests (a domain and a list of descriptors) under a
// `Config`, keeping each limit's state in this process. The gRPC and HTTP endpoints of `floodgate
// serve` are thin layers over it. Thread-safe: any number of threads may call `should_rate_limit`
// while another installs a new configuration.
//
// Semantics are envoyproxy/ratelimit's: one status per request descriptor, in order; a descriptor
// with its own `limit` is limited by it (a fixed window) instead of by the configuration; a
// descriptor that no rule matches is OK without a limit; `hits_addend` of the descriptor (when
// present, 0 included: a check that counts nothing), else of the request, 0 meaning 1; a rule named
// in a matched rule's `replaces` is not applied; `unlimited` is always OK; a limit of 0 is always
// over; shadow mode (per rule, or for the whole service) answers OK but counts what it would have
// denied; the overall code is OVER_LIMIT if any status is.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
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
  Nanos duration_until_reset{0};
  bool shadowed = false;  // Over the limit, answered OK by shadow mode.
};

struct Response {
  Code overall = Code::Ok;
  std::vector<DescriptorStatus> statuses;
  // The configuration the statuses' rules point into; keeps them alive.
  std::shared_ptr<const Config> config;
};

// The state of one rule's limit: one bucket or window per distinct request descriptor.
class RuleState {
 public:
  virtual ~RuleState() = default;
  // Decides `hits` for the descriptor whose values are `key`, at `now`, waiting for a backend no
  // later than `deadline`. `hits` 0 is a check that counts nothing.
  virtual Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                          std::chrono::steady_clock::time_point deadline) = 0;
  // Returns how many descriptor values have state in this process (0 when it is kept elsewhere).
  virtual std::size_t tracked() const { return 0; }
};

// Returns the cost a check (a descriptor with 0 hits) is decided with: 0 for Envoy's window,
// which asks whether the window is past its limit, and 1 for any other algorithm, which asks
// whether one hit would pass.
constexpr std::uint64_t check_cost(Algorithm algorithm) noexcept {
  return algorithm == Algorithm::EnvoyFixedWindow ? 0 : 1;
}

// Makes the state of a rule with a quota, or returns an error naming the rule and why it cannot
// be kept where this factory keeps state.
using StateFactory = std::function<Result<std::shared_ptr<RuleState>>(const Descriptor& rule)>;

// The state of the limits requests carry (Envoy's per-descriptor `limit`): one fixed window per
// (domain, descriptor, unit, count), all of them in one container, so that how many distinct
// limits clients send changes nothing but the number of keys.
class OverrideState {
 public:
  virtual ~OverrideState() = default;
  // Decides `hits` under `quota` (the descriptor's limit, which passed `validate`, with a count
  // above 0) for `key`, its `override_key`, at `now`, waiting for a backend no later than
  // `deadline`. `hits` 0 is a check that counts nothing.
  virtual Decision decide(std::string_view key, const Quota& quota, std::uint64_t hits, Instant now,
                          std::chrono::steady_clock::time_point deadline) = 0;
  // Returns how many windows have state in this process (0 when it is kept elsewhere).
  virtual std::size_t tracked() const { return 0; }
  // Returns how many decisions were made without keeping state (the container was full).
  virtual std::uint64_t untracked() const { return 0; }
};

// Returns the fixed-window rate limit of `limit`, or an error naming the value if it cannot be
// enforced (see `validate`).
Result<RateLimit> rate_limit_of(const LimitOverride& limit);

// Returns a new in-process override state that keeps at most `max_keys` windows: past it, idle
// windows (ended) are dropped, and if none is, a new one is decided as fresh without state.
std::shared_ptr<OverrideState> make_local_override_state(std::size_t max_keys);

struct ServiceOptions {
  // Most descriptors with state per rule; past it, new ones are decided without keeping state
  // (as if seen for the first time) until old ones are idle and dropped.
  std::size_t max_keys_per_rule = 100'000;
  bool shadow_mode = false;  // Every OVER_LIMIT answered OK (and counted).
  // Where rules keep their state; null: in this process.
  StateFactory make_state = nullptr;
  // Where descriptors' own limits keep their state; null: in this process, at most
  // `max_keys_per_rule` windows.
  std::shared_ptr<OverrideState> override_state = nullptr;
};

class Service {
 public:
  // Returns a service for `config`, or the error of a rule whose state cannot be made.
  static Result<std::unique_ptr<Service>> create(std::shared_ptr<const Config> config,
                                                 ServiceOptions options);

  // Decides `request` at `now` (nanoseconds since the Unix epoch).
  Response should_rate_limit(const Request& request, Instant now);

  // Installs `config` for the requests that start after it. A rule whose definition (its place
  // in the tree, algorithm, unit, count, burst) did not change keeps its state. On error (a rule
  // whose state cannot be made) the previous configuration stays.
  Result<void> set_config(std::shared_ptr<const Config> config);

  std::shared_ptr<const Config> config() const;

  // Appends every rule's counters in Prometheus text format (floodgate_rule_*): per rule, and per
  // value for rules with `detailed_metric`. A rule's counters survive reloads while its id does.
  // Also each rule's values with state in this process (floodgate_rule_tracked_values).
  void write_metrics(std::string& out) const;

 private:
  struct Counted {
    std::string label;  // The `rule` label: the rule's id, or its identity if another shares it.
    std::shared_ptr<RuleCounters> rule;
    std::shared_ptr<DetailedCounters> values;  // `detailed_metric` rules only.
  };
  struct Snapshot {
    std::shared_ptr<const Config> config;
    std::unordered_map<const Descriptor*, std::shared_ptr<RuleState>> states;
    std::unordered_map<const Descriptor*, Counted> counters;
    // Descriptors' own limits, counted per domain of the configuration (requests to other
    // domains share `Service::other_overrides_`).
    std::unordered_map<std::string, Counted> override_counters;
  };

  // Counts `hits` answered as `status` under `limit`.
  static void count(const Counted& counted, const RequestDescriptor& request,
                    const DescriptorStatus& status, const RateLimit& limit, bool over,
                    std::uint64_t hits);

  explicit Service(ServiceOptions options);

  std::shared_ptr<const Snapshot> snapshot() const;
  // Returns a new state for `rule` (which has a quota) where this service keeps state.
  Result<std::shared_ptr<RuleState>> state_for(const Descriptor& rule) const;
  // Decides descriptor `d` of `request`, which has its own limit, into `status`; returns
  // whether it is over the limit.
  bool decide_override(const Snapshot& s, const Request& request, const RequestDescriptor& d,
                       std::uint64_t hits, Instant now, DescriptorStatus& status);
  Result<std::shared_ptr<const Snapshot>> build(std::shared_ptr<const Config> config,
                                                const Snapshot* previous) const;

  const ServiceOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // Guarded by mu_.
  std::shared_ptr<OverrideState> overrides_;
  Counted other_overrides_;  // Own limits in domains the configuration does not have.
};

// Returns the state key of a request descriptor: its values, each length-prefixed, so that no two
// lists of values share a key.
std::string state_key(const std::vector<Entry>& entries);

// Returns the state key of a request descriptor with its own `limit`: the limit's unit (a digit,
// 0 for second to 6 for year) and count, '|', then the domain, keys and values, each
// length-prefixed. One container holds the windows of every domain and limit; a descriptor
// whose limit changes starts afresh, as one whose rule changes does.
std::string override_key(std::string_view domain, const LimitOverride& limit,
                         const std::vector<Entry>& entries);

// Returns the limit an `override_key` starts with, or nothing if `key` is not one.
std::optional<LimitOverride> limit_of_override_key(std::string_view key);

// Returns a rule's definition as text: its identity, algorithm, unit, count and burst. Equal texts
// may share state across configurations, and Redis keys are prefixed with it.
std::string definition_of(const Descriptor& rule);

// Returns a new in-process state for `rule` (which must have a rate limit with a quota).
std::shared_ptr<RuleState> make_local_state(const Descriptor& rule, std::size_t max_keys);

}  // namespace floodgate::server
