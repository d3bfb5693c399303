// floodgate bench --redis: the throughput of `RedisLimiter` against one Redis server, beside a
// naive client (one blocking EVALSHA round trip per call) and redis-benchmark's pipelined ceiling
// for the same script.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "floodgate/core/result.h"

namespace floodgate::bench {

struct RedisBenchOptions {
  std::string url;
  double seconds = 1.0;  // Per contender per round.
  int rounds = 3;        // Per row, alternating the contenders; the median is reported.
  std::vector<int> callers = {1, 2, 8, 64};  // Concurrent callers, one row each.
  std::uint64_t keys = 10'000;               // Keys drawn uniformly at random.
  bool json = false;
};

// Runs the table and prints it on standard output, or returns an error naming the URL and what
// failed (a bad URL, a cluster, a server that does not answer).
Result<void> run_redis_bench(const RedisBenchOptions& options);

}  // namespace floodgate::bench
