// Rate limiting a cpp-httplib server in one line: a pre-routing handler that decides every request
// before it is routed, answers a refused one 429 with `Retry-After` and the `RateLimit-Policy`
// and `RateLimit` header fields, and adds those fields to the answers of the others.
//
//   floodgate::KeyedLimiter<> per_client{{.default_quota = floodgate::Quota::per_second(5)}};
//   httplib::Server server;
//   server.set_pre_routing_handler(
//       floodgate::http::limit_requests(floodgate::per_key(per_client), {.name = "client"}));
//
// Any `RequestLimit` (request_limit.h): `one_limit(limiter)`, `per_key(keyed_limiter)`,
// `per_key(redis_limiter)`. Requests are keyed by the client's address unless `key` says how.
// Link cpp-httplib as your build does (Debian's is a compiled library: pkg-config cpp-httplib).
// The handler is called from cpp-httplib's threads at once: it holds only the limit.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "floodgate/http/rate_limit_headers.h"
#include "floodgate/integrations/internal/check_request.h"
#include "floodgate/integrations/request_limit.h"

namespace floodgate::http {

// How `limit_requests` keys, decides and answers.
struct HttplibOptions {
  // The limit's name in the header fields.
  std::string name = "limit";
  // The request's key; empty: its client address (`remote_addr`). Behind a proxy, the first
  // address of X-Forwarded-For, say, if the proxy is trusted to set it.
  std::function<std::string(const httplib::Request&)> key = nullptr;
  // The permits a request takes.
  std::uint64_t cost = 1;
  // How the quota is advertised (`PolicyWindow`).
  PolicyWindow window = PolicyWindow::Rate;
  // The body of a 429.
  std::string body = "too many requests\n";
};

// Returns a handler for `httplib::Server::set_pre_routing_handler` that limits every request by
// `limit`.
template <RequestLimit Limit>
httplib::Server::HandlerWithResponse limit_requests(Limit limit, HttplibOptions options = {}) {
  return [limit = std::move(limit), options = std::move(options)](const httplib::Request& req,
                                                                  httplib::Response& res) {
    const std::string key = options.key ? options.key(req) : req.remote_addr;
    const auto [decision, fields] =
        internal::check_request(limit, key, options.name, options.cost, options.window);
    res.set_header("RateLimit-Policy", fields.policy);
    res.set_header("RateLimit", fields.limit);
    if (decision.allowed()) return httplib::Server::HandlerResponse::Unhandled;
    if (fields.retry_after) res.set_header("Retry-After", *fields.retry_after);
    res.status = 429;
    res.set_content(options.body, "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  };
}

}  // namespace floodgate::http
