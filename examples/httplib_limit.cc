// A cpp-httplib server that lets each client address make 5 requests a second, in bursts of up
// to 10, and answers the rest 429 with Retry-After and the RateLimit header fields.
#include "floodgate/integrations/httplib_limit.h"

#include <httplib.h>

#include "floodgate/floodgate.h"

int main() {
  floodgate::KeyedLimiter<> per_client{
      {.default_quota = floodgate::Quota::per_second(5).with_burst(10)}};
  floodgate::http::HttplibOptions options;
  options.name = "client";
  httplib::Server server;
  server.set_pre_routing_handler(
      floodgate::http::limit_requests(floodgate::per_key(per_client), options));
  server.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello\n", "text/plain");
  });
  return server.listen("127.0.0.1", 8080) ? 0 : 1;
}
