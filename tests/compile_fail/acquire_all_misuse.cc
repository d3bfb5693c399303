// What must not compile, and must fail at the caller's line naming the concept it breaks
// (tests/compile_fail/check.cmake compiles it once per case). Without a case defined it is the
// right use, which must compile: a failure for another reason cannot pass for the expected one.
#include "floodgate/floodgate.h"

int main() {
  floodgate::GcraLimiter<> global{floodgate::Quota::per_second(100)};
  floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_second(5)}};
  floodgate::FixedWindowLimiter<> window{floodgate::Quota::per_minute(60)};
  const floodgate::Instant now{};
#if defined(CASE_KEYED_LIMITER_ITSELF)
  // A KeyedLimiter has no limit without a key: for_key(per_client, key) is one.
  const auto r = floodgate::acquire_all_at(now, 1, global, per_client);  // line 13
#elif defined(CASE_NO_RESERVATIONS_BEFORE_THE_LAST)
  // A fixed window cannot give permits back, so it cannot come before another limit.
  const auto r = floodgate::acquire_all_at(now, 1, window, global);  // line 16
#elif defined(CASE_NOT_A_LIMIT)
  // The former form, a callable deciding last, is no limit.
  const auto r = floodgate::acquire_all_at(
      now, 1, [] { return 1; }, global);  // line 19
#else
  const auto r = floodgate::acquire_all_at(now, 1, global, floodgate::for_key(per_client, "a"));
  const auto w = floodgate::acquire_all_at(now, 1, global, window);
  if (!w.allowed()) return 2;
#endif
  return r.allowed() ? 0 : 1;
}
