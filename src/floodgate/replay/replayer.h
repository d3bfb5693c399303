// `Replayer`: decides the requests of a trace, in order, as one limiter per key would, under a
// policy (the algorithm, the default quota, per-key quotas). Decisions are a pure function of the
// requests and the policy: the same trace gives the same decisions, byte for byte.
//
// Every algorithm keeps its keys in a `KeyedLimiter` of its rule: bounded by `max_keys`, a key
// dropped without loss once its state is full (a full bucket, windows that a later request
// cannot see), a fixed hash seed so that even a full limiter decides the same way every run. A
// trace in time order is decided exactly as by limiters that were never dropped; a request
// older than one already decided (logs are not always in order) is decided as the limiter's
// stale-time rule says.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "floodgate/core/algorithm.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/replay/key_quotas.h"
#include "floodgate/replay/trace.h"

namespace floodgate::replay {

// What a replay decides with.
struct Policy {
  Algorithm algorithm = Algorithm::Gcra;  // Every key's rule.
  Quota quota = Quota::per_second(10);    // The quota of every key no rule of `key_quotas` matches.
  KeyQuotas key_quotas{};                 // Quotas by key pattern; the first match wins.
  std::size_t max_keys = 1'000'000;       // Keys with state at once.
};

// Counters of a replay's keys.
struct ReplayStats {
  std::uint64_t keys_now = 0;            // Keys with state now (see `Replayer::sweep`).
  std::uint64_t overflow_decisions = 0;  // Requests decided by the full keyed limiter's policy.
};

// Decides a trace's requests in the order given, as one limiter per key under a `Policy` would
// (see the file comment for requests out of time order). Not thread-safe; movable.
class Replayer {
 public:
  // Returns a replayer for `policy`, or an error naming a quota the algorithm cannot use (the
  // window algorithms need a burst equal to the count).
  static Result<Replayer> create(Policy policy);

  // Takes `other`'s keys and policy; `other` is left only to be destroyed or assigned to.
  Replayer(Replayer&&) noexcept;
  Replayer& operator=(Replayer&&) noexcept;
  ~Replayer();

  // Decides `request`.
  Decision decide(const Request& request);

  // Returns the quota `key` is limited by.
  Quota quota_of(std::string_view key) const;

  // Returns the counters of the replay's keys.
  ReplayStats stats() const;

  // Drops the state of every key that no longer needs it at the latest instant decided so far
  // (its state is full), losing nothing for requests in time order, and returns how many keys
  // keep state.
  std::uint64_t sweep();

  // Returns the policy the replayer was created with.
  const Policy& policy() const noexcept;

  // The engine behind one algorithm (internal).
  class Engine;

 private:
  explicit Replayer(std::unique_ptr<Engine> engine);
  std::unique_ptr<Engine> engine_;
};

}  // namespace floodgate::replay
