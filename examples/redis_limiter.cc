// One limit for a whole fleet: every process that runs this against the same Redis shares the
// budget of "client-42". Pass the Redis URL as the first argument.
#include "floodgate/redis/redis_limiter.h"

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  auto limiter = floodgate::RedisLimiter::create({
      .url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379",
      .prefix = "example:",
      .default_quota = floodgate::Quota::per_minute(5),  // 5 at once, then one every 12 s
      .on_failure = floodgate::OnRedisFailure::FailClosed,
      // A round trip longer than this is a failure (100 ms by default); a tool can wait longer.
      .command_timeout = std::chrono::seconds(1),
  });
  if (!limiter) {
    std::fprintf(stderr, "%s\n", limiter.error().message().c_str());
    return 2;
  }
  // Connect and load the script now, not in the first call's timeout.
  if (auto connected = (*limiter)->connect(std::chrono::seconds(1)); !connected) {
    std::fprintf(stderr, "%s\n", connected.error().message().c_str());
    return 2;
  }
  int admitted = 0;
  for (int i = 0; i < 8; ++i) {
    floodgate::RedisDecision d = (*limiter)->try_acquire("client-42");
    admitted += d.allowed() ? 1 : 0;
    std::printf("%s by %s: %s\n", d.allowed() ? "admitted" : "denied",
                std::string(floodgate::to_string(d.source)).c_str(),
                floodgate::to_string(d.decision).c_str());
  }
  std::printf("%d of 8 admitted\n", admitted);
  return (*limiter)->stats().errors == 0 ? 0 : 1;
}
