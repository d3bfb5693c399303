// floodgate quickstart: a limiter that takes the time as an input, and a concurrent test that
// checks an order-free invariant: "64 concurrent calls against a burst of 10: exactly 10 pass".
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "floodgate/floodgate.h"

using namespace std::chrono_literals;

int main() {
  // 10 per second, burst 10: ten at once, then one every 100 ms.
  floodgate::GcraLimiter limiter{floodgate::Quota::per_second(10)};

  const floodgate::Instant t0{};
  for (int i = 0; i < 11; ++i) (void)limiter.try_acquire_at(t0);  // 10 pass, the 11th is denied
  floodgate::Decision d = limiter.try_acquire_at(t0 + 50ms);
  std::printf("t0+50ms:  allowed=%d retry_after=%lldms\n", d.allowed(),
              static_cast<long long>(d.retry_after() / 1ms));  // allowed=0 retry_after=50ms
  d = limiter.try_acquire_at(t0 + 100ms);
  std::printf("t0+100ms: allowed=%d remaining=%llu\n", d.allowed(),
              static_cast<unsigned long long>(d.remaining()));  // allowed=1 remaining=0

  // 64 threads call at one instant against a burst of 10. Workers only record; the main thread
  // counts after joining them. The order is the limiter's business; the count is not.
  floodgate::GcraLimiter burst{floodgate::Quota::per_second(10)};
  std::atomic<int> admitted{0};
  std::vector<std::thread> workers;
  workers.reserve(64);
  for (int i = 0; i < 64; ++i) {
    workers.emplace_back([&] {
      if (burst.try_acquire_at(t0).allowed()) admitted.fetch_add(1);
    });
  }
  for (std::thread& w : workers) w.join();
  std::printf("64 concurrent calls, burst 10: %d admitted\n", admitted.load());  // 10
  return admitted.load() == 10 ? 0 : 1;
}
