// floodgate replay --redis: a trace's requests decided by `RedisLimiter` instead of in process,
// at the trace's instants (the same decisions, byte for byte) or at Redis's own.
#pragma once

#include <memory>
#include <string>

#include "floodgate/core/decision.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/replay/replayer.h"
#include "floodgate/replay/trace.h"

namespace floodgate::app {

struct RedisReplayOptions {
  std::string url;
  bool server_time = false;  // Decide at Redis's TIME instead of the trace's instants.
  std::string prefix;        // Empty: one of the run's own, so that runs never share keys.
};

class RedisReplay {
 public:
  // Returns a replay through the Redis at `options.url` for `policy`, having checked that Redis
  // answers, or an error naming the URL and what is wrong (an algorithm Redis cannot decide as
  // the in-process replay does, a server that does not answer).
  static Result<std::unique_ptr<RedisReplay>> create(const RedisReplayOptions& options,
                                                     const replay::Policy& policy);
  ~RedisReplay();

  struct Decided {
    Decision decision;
    Instant at;  // The instant it was decided at: the request's, or Redis's.
  };
  // Decides `request`, or returns an error if Redis did not (the replay must stop: a decision of
  // the failure policy is not the trace's).
  Result<Decided> decide(const replay::Request& request);

  // Returns one line for the summary: where the keys are and what the round trips were.
  std::string summary() const;

 private:
  class Impl;
  explicit RedisReplay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::app
