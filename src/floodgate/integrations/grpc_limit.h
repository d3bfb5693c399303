// Rate limiting a gRPC C++ service: `limit_call`, the first line of a method, decides the call
// and answers a refused one RESOURCE_EXHAUSTED, with the wait in trailing metadata (`retry-after`,
// whole seconds) beside the `ratelimit` and `ratelimit-policy` items every answer carries.
//
//   grpc::Status Check(grpc::ServerContext* context, const Request* req, Reply* reply) override {
//     if (grpc::Status s = floodgate::grpc_limit::limit_call(
//             floodgate::per_key(per_client), *context,
//             floodgate::grpc_limit::peer_address(*context));
//         !s.ok()) {
//       return s;
//     }
//     ...
//   }
//
// Not an interceptor: gRPC C++'s server interceptors (grpc::experimental) observe a call but
// cannot end it with a status of their own, so the method asks first. Keys: the peer's address
// (`peer_address`), a metadata value (`metadata_value`, an API key), or the method's name. Any
// `RequestLimit` (request_limit.h). Thread-safe as the limit is.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/http/rate_limit_headers.h"
#include "floodgate/integrations/internal/check_request.h"
#include "floodgate/integrations/request_limit.h"

namespace floodgate::grpc_limit {

// How `limit_call` decides and answers.
struct Options {
  std::string name = "limit";  // The limit's name in the `ratelimit` items.
  std::uint64_t cost = 1;      // The permits a call takes.
  http::PolicyWindow window = http::PolicyWindow::Rate;  // How the quota is advertised.
  std::string message = "rate limited";  // The refusal's status message, before the wait.
};

// Returns the peer's address without its scheme and port: "ipv4:203.0.113.9:52144" ->
// "203.0.113.9", "ipv6:[::1]:443" -> "::1"; another form as gRPC gives it.
inline std::string peer_address(const grpc::ServerContextBase& context) {
  std::string peer = context.peer();
  for (const std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (std::string_view(peer).starts_with(scheme)) {
      std::string address = peer.substr(scheme.size());
      if (address.starts_with('[')) return address.substr(1, address.find(']') - 1);
      return address.substr(0, address.rfind(':'));
    }
  }
  return peer;
}

// Returns the first value the client sent for metadata `key` (lowercase), or nothing.
inline std::optional<std::string> metadata_value(const grpc::ServerContextBase& context,
                                                 std::string_view key) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (found == metadata.end()) return std::nullopt;
  return std::string(found->second.data(), found->second.size());
}

// Decides a call keyed `key` by `limit`: OK, or RESOURCE_EXHAUSTED ("rate limited: retry after 2
// s"). Either way the trailing metadata carries `ratelimit-policy` and `ratelimit` (the HTTP
// fields' values); a refusal whose wait is finite, `retry-after` in whole seconds.
template <RequestLimit Limit>
grpc::Status limit_call(const Limit& limit, grpc::ServerContextBase& context, std::string_view key,
                        const Options& options = {}) {
  const auto [decision, fields] =
      internal::check_request(limit, key, options.name, options.cost, options.window);
  context.AddTrailingMetadata("ratelimit-policy", fields.policy);
  context.AddTrailingMetadata("ratelimit", fields.limit);
  if (decision.allowed()) return grpc::Status::OK;
  std::string message = options.message;
  if (fields.retry_after) {
    context.AddTrailingMetadata("retry-after", *fields.retry_after);
    message += ": retry after " + *fields.retry_after + " s";
  } else {
    message += ": the cost is above what the limit ever admits at once";
  }
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, message);
}

}  // namespace floodgate::grpc_limit
