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
//
// Several limits at once (`acquire_all_at`): `header_fields` writes an item per limit.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
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

// How a quota is advertised in `RateLimit-Policy`, whose items have a count and a window but no
// burst.
enum class PolicyWindow : std::uint8_t {
  // The rate (the default): `q` is the count, `w` the period, "5/s burst 10" as q=5;w=1. A client
  // that sends at most `q` in any `w` is never refused. With a burst above the count, `RateLimit`'s
  // `r` can exceed `q` (r=9 beside q=5): the burst shows there.
  Rate,
  // The burst window: `q` is the burst, `w` the time the quota takes to refill it, "5/s burst 10"
  // as q=10;w=2 (rounded up to whole seconds, so the rate advertised is never above the quota's).
  // `r` never exceeds `q`. A client that sends `q` at the end of one window and `q` at the start
  // of the next can be refused.
  Burst,
};

// Returns one `RateLimit-Policy` item for the quota: `"name";q=<count>;w=<window seconds>`. The
// draft's window is whole seconds: a period that is not is advertised over the next whole number
// of seconds with the count scaled down (10 per 500 ms: q=20;w=1; 7 per 1500 ms: q=9;w=2), so a
// client that follows the policy never exceeds the quota. `window` says which window.
std::string policy_item(std::string_view name, const Quota& quota,
                        PolicyWindow window = PolicyWindow::Rate);

// Returns one `RateLimit` item for the decision: `"name";r=<remaining>;t=<seconds until the
// limit is full again, rounded up>`.
std::string limit_item(std::string_view name, const Decision& decision);

// One limit a request was checked against: its name in the fields, its quota and its answer
// (`AllOrNone::decisions` gives one per limit).
struct LimitState {
  std::string_view name;  // Its name in the fields' items.
  Quota quota;            // Its quota, for `RateLimit-Policy`.
  Decision decision;      // Its answer, for `RateLimit` (and `Retry-After`, if it refused).
};

// The header fields of an answer.
struct HeaderFields {
  std::string policy;                      // RateLimit-Policy: an item per limit.
  std::string limit;                       // RateLimit: an item per limit.
  std::optional<std::string> retry_after;  // Retry-After: the refusing limit's wait, if finite.
};

// Returns the fields of a request checked against every one of `limits`, in their order;
// `refused` is the index of the limit that refused (nothing: admitted).
HeaderFields header_fields(std::span<const LimitState> limits, std::optional<std::size_t> refused,
                           PolicyWindow window = PolicyWindow::Rate);

// Returns `items` as one field value: the items separated by ", ".
std::string join(std::initializer_list<std::string_view> items);

// Returns `text` as a structured-field string: quoted, with `"` and `\` escaped, and bytes
// outside printable ASCII (which a structured-field string cannot hold) written as '?'.
std::string sf_string(std::string_view text);

}  // namespace floodgate::http
