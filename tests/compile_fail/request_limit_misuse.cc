// What must not compile for the server integrations: a limiter passed where a `RequestLimit` is
// needed must fail at the caller's line, naming the concept (tests/compile_fail/check.cmake).
// Without a case defined it is the right use, which must compile.
#include <string_view>

#include "floodgate/floodgate.h"
#include "floodgate/integrations/beast_limit.h"

int main() {
  floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_second(5)}};
  const std::string_view key = "203.0.113.9";
#if defined(CASE_KEYED_LIMITER_ITSELF)
  // A KeyedLimiter is a RequestLimit through per_key(per_client).
  const auto r = floodgate::http::limit_beast(per_client, key);  // line 14
#else
  const auto r = floodgate::http::limit_beast(floodgate::per_key(per_client), key);
#endif
  return r.allowed() ? 0 : 1;
}
