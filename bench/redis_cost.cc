// floodgate_redis_cost: Redis CPU per rate-limit decision, for each way floodgate decides on
// Redis and for two peers' ways, measured on one redis-server: each contender sends the same
// number of decisions, pipelined, on keys drawn uniformly at random, and the server's own CPU
// counters (INFO cpu, main thread, user + system) say what they cost it. Every key admits every
// call, so the figures are of deciding, not of refusing. Contenders alternate; each row is the
// median of the rounds, and the last column its ratio to envoyproxy/ratelimit's INCRBY + EXPIRE.
//
//   floodgate_redis_cost --url redis://127.0.0.1:6379 [--decisions N] [--keys N] [--rounds N]
//
// The scripts and arguments are floodgate's own (the scripts from floodgate/redis/internal/
// scripts.h, the arguments as `RedisLimiter` sends them for a server-time call of cost 1); the
// peers' are restated from their documented behaviour:
//   - envoyproxy/ratelimit: INCRBY key hits, then EXPIRE key unit, in one pipeline;
//   - rate-limiter-flexible (Node), fixed window: one script that creates the key with its
//     expiry if absent (SET NX EX), counts (INCRBY), and reads the time left (PTTL).
// A last row is a script that only reads TIME, GETs and SETs: the least any script that reads
// the server's clock and keeps a state (GCRA, the token bucket) can cost.
#include <hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/quota.h"
#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/limiters/internal/token_bucket_rule.h"
#include "floodgate/redis/internal/scripts.h"
#include "floodgate/redis/internal/sha1.h"
#include "floodgate/redis/internal/url.h"

namespace floodgate::bench {
namespace {

// Every key admits every call of the run, and lives through it: GCRA and the token bucket keep
// a key until its bucket is full again, so a quota whose calls each take one second of refill
// keeps keys alive as the fixed windows' 60 s keep theirs (a key created and expired on every
// call would measure Redis's key expiry instead).
const Quota kQuota = *Quota::make(std::chrono::seconds(1'000'000), 1'000'000, 1'000'000);
constexpr std::size_t kPipeline = 64;  // Decisions per write.

// The peer's fixed window script (rate-limiter-flexible's steps, in our words).
constexpr std::string_view kFlexibleWindow = R"lua(
redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local consumed = redis.call('incrby', KEYS[1], ARGV[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}
)lua";

// The least a script that reads the server's clock and keeps a state can do: TIME, GET, SET
// with an expiry, and a reply; what every GCRA or token bucket script costs before deciding.
constexpr std::string_view kFloor = R"lua(
local now = redis.call('TIME')
local state = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], '1796664564879079000', 'PX', 60000)
return '1 1796664564 879079 -'
)lua";

using Command = std::vector<std::string>;

// A way of deciding: the commands of one decision on `key`.
struct Contender {
  std::string name;
  std::function<std::vector<Command>(const std::string& key)> commands;
  std::vector<std::string> scripts;  // Loaded before it runs.
};

// Appends `command` to `c`'s output buffer, to be sent with the next read of a reply.
void append(redisContext* c, const Command& command) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& a : command) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data());
}

// Sends `command` and returns its reply (null if the connection failed).
redisReply* run(redisContext* c, const Command& command) {
  append(c, command);
  void* reply = nullptr;
  return redisGetReply(c, &reply) == REDIS_OK ? static_cast<redisReply*>(reply) : nullptr;
}

// The server's main-thread CPU seconds (user + system).
double server_cpu(redisContext* c) {
  redisReply* r = run(c, {"INFO", "cpu"});
  double total = 0;
  if (r != nullptr && r->type == REDIS_REPLY_STRING) {
    const std::string text(r->str, r->len);
    for (const char* field : {"used_cpu_user_main_thread:", "used_cpu_sys_main_thread:"}) {
      const auto at = text.find(field);
      if (at != std::string::npos)
        total += std::strtod(text.c_str() + at + std::strlen(field), nullptr);
    }
  }
  if (r != nullptr) freeReplyObject(r);
  return total;
}

// Sends `decisions` decisions of `contender` and returns the server's CPU microseconds per
// decision, or a negative number after an error reply (printed).
double measure(redisContext* c, const Contender& contender, std::uint64_t decisions,
               std::uint64_t keys, std::mt19937_64& random) {
  std::uniform_int_distribution<std::uint64_t> pick(0, keys - 1);
  const double before = server_cpu(c);
  std::uint64_t sent = 0;
  while (sent < decisions) {
    std::size_t replies = 0;
    for (std::size_t i = 0; i < kPipeline && sent < decisions; ++i, ++sent) {
      for (const Command& command :
           contender.commands("floodgate-cost:k" + std::to_string(pick(random)))) {
        append(c, command);
        ++replies;
      }
    }
    for (std::size_t i = 0; i < replies; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK) {
        std::fprintf(stderr, "%s: connection failed: %s\n", contender.name.c_str(), c->errstr);
        return -1;
      }
      auto* r = static_cast<redisReply*>(reply);
      const bool error = r->type == REDIS_REPLY_ERROR;
      if (error)
        std::fprintf(stderr, "%s: %.*s\n", contender.name.c_str(), static_cast<int>(r->len),
                     r->str);
      freeReplyObject(r);
      if (error) return -1;
    }
  }
  return (server_cpu(c) - before) * 1e6 / static_cast<double>(decisions);
}

std::vector<Contender> contenders() {
  const auto g = internal::Gcra::params(kQuota);
  constexpr std::int64_t kSecond = 1'000'000'000;
  const auto charge = static_cast<std::int64_t>(internal::Gcra::charge(1, g));
  const auto b = internal::TokenBucket::params(kQuota);
  const auto number = [](auto v) {
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
    return std::string(buffer, end);
  };
  const std::string gcra = internal::gcra_script().sha1;
  const std::string bucket = internal::token_bucket_script().sha1;
  const std::string window_script = internal::fixed_window_script().sha1;
  const std::string flexible(kFlexibleWindow);
  const std::string flexible_sha = internal::sha1_hex(flexible);
  std::vector<Contender> out;
  out.push_back({"envoyproxy/ratelimit: INCRBY + EXPIRE",
                 [](const std::string& key) {
                   return std::vector<Command>{{"INCRBY", key, "1"}, {"EXPIRE", key, "60"}};
                 },
                 {}});
  out.push_back({"rate-limiter-flexible: fixed window script",
                 [flexible_sha](const std::string& key) {
                   return std::vector<Command>{{"EVALSHA", flexible_sha, "1", key, "1", "60"}};
                 },
                 {flexible}});
  out.push_back(
      {"floodgate: Envoy's window, upstream's keys",
       [](const std::string& key) {
         return std::vector<Command>{{"SET", key, "0", "EX", "60", "NX"}, {"INCRBY", key, "1"}};
       },
       {}});
  out.push_back({"floodgate: GCRA script",
                 [=](const std::string& key) {
                   return std::vector<Command>{
                       {"EVALSHA", gcra, "1", key, "", "", std::to_string(g.window / kSecond),
                        std::to_string(g.window % kSecond), std::to_string(charge / kSecond),
                        std::to_string(charge % kSecond), "1", "0"}};
                 },
                 {std::string(internal::gcra_script().text)}});
  out.push_back({"floodgate: token bucket script",
                 [=](const std::string& key) {
                   return std::vector<Command>{{"EVALSHA", bucket, "1", key, "",
                                                number(b.rate_per_ns), number(b.ns_per_token),
                                                number(b.burst), "1", "1", "0"}};
                 },
                 {std::string(internal::token_bucket_script().text)}});
  out.push_back({"floodgate: fixed window script",
                 [=](const std::string& key) {
                   return std::vector<Command>{{"EVALSHA", window_script, "1", key, "", "60", "0",
                                                "1000000000", "1", "1", "0"}};
                 },
                 {std::string(internal::fixed_window_script().text)}});
  const std::string floor(kFloor);
  const std::string floor_sha = internal::sha1_hex(floor);
  out.push_back({"reference: TIME + GET + SET in a script",
                 [floor_sha](const std::string& key) {
                   return std::vector<Command>{{"EVALSHA", floor_sha, "1", key}};
                 },
                 {floor}});
  return out;
}

int main_(int argc, char** argv) {
  std::string url = "redis://127.0.0.1:6379";
  std::uint64_t decisions = 200'000;
  std::uint64_t keys = 10'000;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--url") {
      url = value;
    } else if (flag == "--decisions") {
      decisions = std::strtoull(value.c_str(), nullptr, 10);
    } else if (flag == "--keys") {
      keys = std::strtoull(value.c_str(), nullptr, 10);
    } else if (flag == "--rounds") {
      rounds = std::atoi(value.c_str());
    } else {
      std::fprintf(stderr, "floodgate_redis_cost: unknown flag \"%s\"\n", flag.c_str());
      return 2;
    }
  }
  Result<internal::RedisUrl> parsed = internal::parse_redis_url(url);
  if (!parsed || parsed->cluster || decisions == 0 || keys == 0 || rounds < 1) {
    std::fprintf(stderr,
                 "floodgate_redis_cost: needs --url redis://HOST:PORT of one server, and "
                 "positive counts\n");
    return 2;
  }
  const internal::Endpoint& e = parsed->endpoints.front();
  redisContext* c = redisConnect(e.host.c_str(), e.port);
  if (c == nullptr || c->err != 0) {
    std::fprintf(stderr, "floodgate_redis_cost: %s: cannot connect\n", url.c_str());
    return 1;
  }
  std::vector<Contender> all = contenders();
  for (const Contender& contender : all) {
    for (const std::string& script : contender.scripts) {
      if (redisReply* r = run(c, {"SCRIPT", "LOAD", script})) freeReplyObject(r);
    }
  }
  std::mt19937_64 random(42);
  std::vector<std::vector<double>> cost(all.size());
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (redisReply* r = run(c, {"FLUSHDB"})) freeReplyObject(r);
      const double us = measure(c, all[i], decisions, keys, random);
      if (us < 0) return 1;
      cost[i].push_back(us);
    }
  }
  std::printf(
      "Redis CPU per decision (main thread, user + system), %llu decisions on %llu keys "
      "per round, %llu per write, median of %d rounds\n",
      static_cast<unsigned long long>(decisions), static_cast<unsigned long long>(keys),
      static_cast<unsigned long long>(kPipeline), rounds);
  std::printf("%-46s %10s %14s %10s\n", "contender", "us", "decisions/s", "x upstream");
  std::vector<double> median(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::sort(cost[i].begin(), cost[i].end());
    median[i] = cost[i][cost[i].size() / 2];
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::printf("%-46s %10.2f %14.0f %9.2fx\n", all[i].name.c_str(), median[i], 1e6 / median[i],
                median[i] / median[0]);
  }
  redisFree(c);
  return 0;
}

}  // namespace
}  // namespace floodgate::bench

int main(int argc, char** argv) { return floodgate::bench::main_(argc, argv); }
