// HTTP header fields for a rate-limited response: `RateLimit-Policy` and `RateLimit` of the IETF
// draft (draft-ietf-httpapi-ratelimit-headers, structured fields since draft-07) and
// `Retry-After` (RFC 9110), from a `Decision` and its `Quota`. Values only: no HTTP library.
// Free functions of values; thread-safe.
//
//   const floodgate::Decision d = per_client.try_acquire_at(client, now);
//   res.set_header("RateLimit-Policy", floodgate::http::policy_item("client", quota));
//   res.set_header("RateLimit", floodgate::http::limit_item("client", d));
//   if (!d.allowed()) {
//     if (auto after = floodgate::http::retry_after(d)) res.set_header("Retry-After", *after);
//     res.status = 429;
//   }
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"

namespace floodgate::http {

// Returns `wait` in whole seconds, rounded up (so that a client that waits that long is not
// early), or nothing for `kNever`. Zero stays zero; a negative wait is zero.
std::optional<std::int64_t> ceil_seconds(Nanos wait) noexcept;

// Returns the `Retry-After` value for a decision that was not admitted: its `retry_after`, in
// whole seconds rounded up, at least 1. Nothing for an admitted request, and nothing for
// `ExceedsBurst` and other waits that never end ("never": no wait admits the request, so no
// `Retry-After` is honest).
std::optional<std::string> retry_after(const Decision& decision);

// Returns one `RateLimit-Policy` item for the quota: `"name";q=<count>;w=<window seconds>`. The
// draft's window is whole seconds: a period that is not is advertised over the next whole number
// of seconds with the count scaled down (10 per 500 ms: q=20;w=1; 7 per 1500 ms: q=9;w=2), so a
// client that follows the policy never exceeds the quota. The draft has no burst; a client sees
// the burst through `limit_item`'s `r`.
std::string policy_item(std::string_view name, const Quota& quota);

// Returns one `RateLimit` item for the decision: `"name";r=<remaining>;t=<seconds until the
// limit is full again, rounded up>`.
std::string limit_item(std::string_view name, const Decision& decision);

// Returns `items` as one field value: the items separated by ", ".
std::string join(std::initializer_list<std::string_view> items);

// Returns `text` as a structured-field string: quoted, with `"` and `\` escaped, and bytes
// outside printable ASCII (which a structured-field string cannot hold) written as '?'.
std::string sf_string(std::string_view text);

}  // namespace floodgate::http
