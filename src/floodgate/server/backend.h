// `Backend`: where a service's limits keep their state, and what decides a request's descriptors
// under it, a whole request at a time (envoyproxy/ratelimit's `RateLimitCache::DoLimit`,
// limitador's `CounterStorage`). Two are built in: in this process (`make_local_backend`) and in
// Redis (`RedisBackend`, redis_backend.h). Thread-safe: any number of requests are decided at
// once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "floodgate/core/algorithm.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/server/config.h"

namespace floodgate::server {

// The state of one rule's limit in a backend: one bucket or window per distinct request
// descriptor. Made by `Backend::make_state`, and only that backend's `decide` reads it.
class RuleState {
 public:
  virtual ~RuleState() = default;
  // Returns how many descriptor values have state in this process (0 when it is kept elsewhere).
  virtual std::size_t tracked() const { return 0; }
};

// One descriptor of a request, for a backend to decide: under its rule's state, or under the
// limit it carries (Envoy's per-descriptor `limit`, envoyproxy/ratelimit's fixed window).
struct BackendCall {
  RuleState* state = nullptr;      // The rule's state; null for `own_limit`.
  std::optional<Quota> own_limit;  // The descriptor's own limit, when `state` is null.
  std::string_view key;            // `Config::state_key`, or `override_key` for an own limit.
  // What the key was made from, for a backend that keys state its own way (Redis, in
  // envoyproxy/ratelimit's keys): the rule (null for an own limit), the domain and the entries.
  const Descriptor* rule = nullptr;
  std::string_view domain;
  std::span<const Entry> entries;
  std::uint64_t hits = 1;                 // 0: a check that counts nothing (see `check_cost`).
  std::optional<Decision> decision = {};  // Written by `Backend::decide`.
  bool failed = false;  // Written by `Backend::decide`: its failure policy decided, not the store.
};

// Returns the cost a check (a descriptor with 0 hits) is decided with: 0 for Envoy's window,
// which asks whether the window is past its limit, and 1 for any other algorithm, which asks
// whether one hit would pass.
constexpr std::uint64_t check_cost(Algorithm algorithm) noexcept {
  return algorithm == Algorithm::EnvoyFixedWindow ? 0 : 1;
}

class Backend {
 public:
  virtual ~Backend() = default;

  // Makes the state of `rule` (which has a quota), or returns an error naming the rule and why
  // its limit cannot be kept here.
  virtual Result<std::shared_ptr<RuleState>> make_state(const Descriptor& rule) = 0;

  // Decides every call of one request at `now` (nanoseconds since the Unix epoch), waiting for
  // the store no later than `deadline`: calls still undecided then are decided by the backend's
  // failure policy without waiting. Writes each call's `decision`. Each `state` was made by this
  // backend.
  virtual void decide(std::span<BackendCall> calls, Instant now,
                      std::chrono::steady_clock::time_point deadline) = 0;

  // Returns how many own-limit windows have state in this process, and how many own-limit
  // decisions were made without keeping state (the windows were full); 0 when kept elsewhere.
  virtual std::size_t own_limits_tracked() const { return 0; }
  virtual std::uint64_t own_limits_untracked() const { return 0; }
};

// Returns a backend that keeps state in this process: per rule a `KeyedLimiter` of its
// algorithm, and one for every descriptor's own limit, each with at most `max_keys` keys; past
// it, new keys are decided as fresh ones without state until old ones are full and dropped.
std::shared_ptr<Backend> make_local_backend(std::size_t max_keys);

}  // namespace floodgate::server
