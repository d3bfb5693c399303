// What every server integration does for a request: decide it and make the header fields its
// answer carries. Not part of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "floodgate/core/decision.h"
#include "floodgate/http/rate_limit_headers.h"
#include "floodgate/integrations/request_limit.h"

namespace floodgate::internal {

// A request decided by a limit, and the fields of its answer.
struct CheckedRequest {
  Decision decision;
  http::HeaderFields fields;
};

// Takes `cost` for `key` from `limit`, named `name` in the fields.
template <RequestLimit Limit>
CheckedRequest check_request(const Limit& limit, std::string_view key, std::string_view name,
                             std::uint64_t cost, http::PolicyWindow window) {
  const Decision decision = limit.decide(key, cost);
  const http::LimitState state[] = {{name, limit.quota(key), decision}};
  return {decision,
          http::header_fields(
              state, decision.allowed() ? std::nullopt : std::optional<std::size_t>(0), window)};
}

}  // namespace floodgate::internal
