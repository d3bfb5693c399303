// Built against the installed package: find_package(floodgate) + floodgate::floodgate.
#include <cstdio>

#include "floodgate/floodgate.h"

int main() {
  floodgate::Result<floodgate::Quota> quota = floodgate::Quota::parse("2/s");
  if (!quota) {
    std::fprintf(stderr, "%s\n", quota.error().message().c_str());
    return 1;
  }
  floodgate::GcraLimiter limiter{*quota};
  const floodgate::Instant t0{};
  const bool ok = limiter.try_acquire_at(t0).allowed() && limiter.try_acquire_at(t0).allowed() &&
                  !limiter.try_acquire_at(t0).allowed();
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
