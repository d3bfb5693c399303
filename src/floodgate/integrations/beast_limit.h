// Rate limiting a Boost.Beast server: decide a request before handling it, answer a refused one
// with a ready 429 (Retry-After and the RateLimit header fields), and add the fields to the
// answers of the others.
//
//   const floodgate::http::BeastLimit limit =
//       floodgate::http::limit_beast(floodgate::per_key(per_client), client_address);
//   if (!limit.allowed()) return send(limit.refusal(req));
//   auto res = handle(req);
//   limit.apply(res);
//
// Any `RequestLimit` (request_limit.h). Header-only, as Beast is (Boost 1.74 and later).
// Thread-safe as the limit is: call it from any number of connections' threads at once.
#pragma once

#include <boost/beast/http.hpp>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "floodgate/http/rate_limit_headers.h"
#include "floodgate/integrations/internal/check_request.h"
#include "floodgate/integrations/request_limit.h"

namespace floodgate::http {

// How `limit_beast` decides and answers.
struct BeastOptions {
  std::string name = "limit";                // The limit's name in the header fields.
  std::uint64_t cost = 1;                    // The permits a request takes.
  PolicyWindow window = PolicyWindow::Rate;  // How the quota is advertised.
  std::string body = "too many requests\n";  // The body of a 429.
};

// What `limit_beast` decided for one request, and the header fields its answer carries.
class BeastLimit {
 public:
  // What `limit_beast` returns: its decision, the fields and the body of a refusal.
  BeastLimit(Decision decision, HeaderFields fields, std::string body)
      : decision_(decision), fields_(std::move(fields)), body_(std::move(body)) {}

  // Reports whether the request was admitted.
  bool allowed() const noexcept { return decision_.allowed(); }
  // Returns the limit's decision.
  const Decision& decision() const noexcept { return decision_; }
  // Returns the header fields the answer carries.
  const HeaderFields& fields() const noexcept { return fields_; }

  // Adds `RateLimit-Policy` and `RateLimit` (and `Retry-After`, if refused) to `res`.
  template <class Body, class Fields>
  void apply(boost::beast::http::response<Body, Fields>& res) const {
    res.set("RateLimit-Policy", fields_.policy);
    res.set("RateLimit", fields_.limit);
    if (fields_.retry_after) res.set(boost::beast::http::field::retry_after, *fields_.retry_after);
  }

  // Returns the answer to a refused `req`: 429, in its HTTP version and keep-alive, with the
  // header fields and the body of the options.
  template <class Body, class Fields>
  boost::beast::http::response<boost::beast::http::string_body> refusal(
      const boost::beast::http::request<Body, Fields>& req) const {
    boost::beast::http::response<boost::beast::http::string_body> res{
        boost::beast::http::status::too_many_requests, req.version()};
    res.set(boost::beast::http::field::content_type, "text/plain");
    res.keep_alive(req.keep_alive());
    apply(res);
    res.body() = body_;
    res.prepare_payload();
    return res;
  }

 private:
  Decision decision_;
  HeaderFields fields_;
  std::string body_;
};

// Decides a request keyed `key` by `limit`. The key is any contiguous text: a `std::string`, a
// `std::string_view`, or Beast's own `string_view` (what `req["X-Client"]` returns).
template <RequestLimit Limit, class Key>
requires requires(const Key& k) {
  { k.data() } -> std::convertible_to<const char*>;
  { k.size() } -> std::convertible_to<std::size_t>;
}
BeastLimit limit_beast(const Limit& limit, const Key& key, const BeastOptions& options = {}) {
  const std::string_view text(key.data(), key.size());
  internal::CheckedRequest checked =
      internal::check_request(limit, text, options.name, options.cost, options.window);
  return BeastLimit(checked.decision, std::move(checked.fields), options.body);
}

}  // namespace floodgate::http
