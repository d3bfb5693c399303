// A global limit and a per-client limit for a whole fleet, both charged or neither: a request a
// client's own limit refuses takes nothing from the global one. Pass the Redis URL as the first
// argument.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "floodgate/redis/redis_limiter.h"

int main(int argc, char** argv) {
  floodgate::RedisLimiterOptions options{.url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379",
                                         .prefix = "fleet:global:",
                                         .default_quota = floodgate::Quota::per_minute(5),
                                         // A tool can wait longer than the 100 ms default.
                                         .command_timeout = std::chrono::seconds(1)};
  auto global = floodgate::RedisLimiter::create(options);
  if (!global) return std::fprintf(stderr, "%s\n", global.error().message().c_str()), 2;
  if (auto connected = (*global)->connect(std::chrono::seconds(1)); !connected) {
    return std::fprintf(stderr, "%s\n", connected.error().message().c_str()), 2;
  }
  options.prefix = "fleet:client:";
  options.default_quota = floodgate::Quota::per_minute(2);
  auto per_client = floodgate::RedisLimiter::create(options, **global);  // Same connections.
  if (!per_client) return std::fprintf(stderr, "%s\n", per_client.error().message().c_str()), 2;

  int admitted = 0;
  for (const std::string client : {"a", "a", "a", "b", "b", "c", "d"}) {
    // One hash tag in every key: on a Redis Cluster they must share a slot. A call holds a view
    // of its key, which must outlive it.
    const std::string key = "{fleet}:" + client;
    std::vector<floodgate::RedisCall> calls = {{.limiter = global->get(), .key = "{fleet}"},
                                               {.limiter = per_client->get(), .key = key}};
    const auto r = floodgate::RedisLimiter::acquire_all(calls);
    if (!r) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 2;
    if (r->allowed()) {
      ++admitted;
      std::printf("%s: admitted\n", client.c_str());
    } else {
      const auto wait = calls[r->refused].decision.decision.retry_after();
      std::printf("%s: refused by the %s limit, retry in %lld s\n", client.c_str(),
                  r->refused_by(0) ? "global" : "client's",
                  static_cast<long long>(std::chrono::ceil<std::chrono::seconds>(wait).count()));
    }
  }
  std::printf("%d of 7 admitted\n", admitted);
  return (*global)->stats().errors == 0 ? 0 : 1;
}
