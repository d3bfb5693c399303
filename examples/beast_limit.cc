// One Boost.Beast request behind a per-client limit: a refused request gets a ready 429 with
// Retry-After and the RateLimit header fields; an admitted one gets the fields on its answer.
#include "floodgate/integrations/beast_limit.h"

#include <boost/beast/http.hpp>
#include <cstdio>

#include "floodgate/floodgate.h"

namespace http = boost::beast::http;

http::response<http::string_body> handle(const http::request<http::string_body>& req,
                                         floodgate::KeyedLimiter<>& per_client,
                                         std::string_view client) {
  const auto limit = floodgate::http::limit_beast(floodgate::per_key(per_client), client);
  if (!limit.allowed()) return limit.refusal(req);
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.body() = "hello\n";
  limit.apply(res);
  res.prepare_payload();
  return res;
}

int main() {
  floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_minute(1)}};
  const http::request<http::string_body> req{http::verb::get, "/hello", 11};
  const unsigned first = handle(req, per_client, "203.0.113.9").result_int();
  const unsigned second = handle(req, per_client, "203.0.113.9").result_int();
  std::printf("%u %u\n", first, second);
  return first == 200 && second == 429 ? 0 : 1;
}
