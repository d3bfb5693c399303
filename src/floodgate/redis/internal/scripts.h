// The Lua scripts the Redis limiters run, one per algorithm, and their SHA-1 names. Not part of
// the public API; docs/redis.md explains how each repeats the in-process rule. Thread-safe.
//
// Every script decides one request for one key (KEYS[1]) atomically and replies with one bulk
// string of space-separated fields, which the client turns into a `Decision` with the same rule
// code that the in-process limiters run:
//   GCRA:          ARGV = t | "", window, charge, write, slack
//                  reply "<admitted 0|1> <t> <state before, or ->"
//   token bucket:  ARGV = t | "", rate per ns, ns per token, burst, cost, write, slack
//                  reply "<admitted 0|1> <t> <state before, or ->"
//   fixed window:  ARGV = t | "", period in whole seconds | 0, period in ns if below a second | 0,
//                  limit, hits, write, slack
//                  reply "<0 denied|1 admitted|2 stale> <t> <window start> <count>"
// `t` is the instant in nanoseconds as a decimal, or empty for the server's TIME. `write` is "1"
// to store the state the decision leads to, "0" for a peek. `slack` is milliseconds added to the
// key's TTL. Numbers the client formats as
// decimals are exact; doubles are written with 17 significant digits, which read back exactly.
#pragma once

#include <string>
#include <string_view>

namespace floodgate::internal {

struct Script {
  std::string_view text;
  std::string sha1;  // Lowercase hexadecimal, as EVALSHA takes it.
};

const Script& gcra_script();
// GCRA over several keys, all or none: see scripts.cc for its arguments and reply.
const Script& gcra_all_script();
const Script& token_bucket_script();
const Script& fixed_window_script();

}  // namespace floodgate::internal
