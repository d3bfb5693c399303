#include "floodgate/http/rate_limit_headers.h"

#include <limits>

namespace floodgate::http {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
__extension__ using Uint128 = unsigned __int128;  // GCC and Clang: exact 64 x 64-bit products.

}  // namespace

std::optional<std::int64_t> ceil_seconds(Nanos wait) noexcept {
  if (wait == kNever) return std::nullopt;
  const std::int64_t ns = wait.count();
  if (ns <= 0) return 0;
  return ns / kSecond + (ns % kSecond != 0 ? 1 : 0);
}

std::optional<std::string> retry_after(const Decision& decision) {
  if (decision.allowed()) return std::nullopt;
  const std::optional<std::int64_t> seconds = ceil_seconds(decision.retry_after());
  if (!seconds) return std::nullopt;
  return std::to_string(std::max<std::int64_t>(1, *seconds));
}

std::string policy_item(std::string_view name, const Quota& quota, PolicyWindow window) {
  const std::int64_t period = quota.period().count();
  if (window == PolicyWindow::Burst) {
    // The time the quota takes to refill its burst, burst x period / count, in whole seconds
    // rounded up (at least 1): the rate advertised, burst per window, is never above the quota's.
    const Uint128 refill = static_cast<Uint128>(quota.burst()) * static_cast<Uint128>(period);
    const Uint128 per_second = static_cast<Uint128>(quota.count()) * kSecond;
    Uint128 seconds = refill / per_second + (refill % per_second != 0 ? 1 : 0);
    if (seconds == 0) seconds = 1;
    const std::uint64_t w = seconds > std::numeric_limits<std::uint64_t>::max()
                                ? std::numeric_limits<std::uint64_t>::max()
                                : static_cast<std::uint64_t>(seconds);
    return sf_string(name) + ";q=" + std::to_string(quota.burst()) + ";w=" + std::to_string(w);
  }
  const std::int64_t seconds = period / kSecond + (period % kSecond != 0 ? 1 : 0);
  std::uint64_t q = quota.count();
  if (period % kSecond != 0) {
    // count x window / period, rounded down: never more than the quota admits.
    const Uint128 scaled = static_cast<Uint128>(quota.count()) * static_cast<Uint128>(seconds) *
                           static_cast<Uint128>(kSecond) / static_cast<Uint128>(period);
    q = scaled > std::numeric_limits<std::uint64_t>::max()
            ? std::numeric_limits<std::uint64_t>::max()
            : static_cast<std::uint64_t>(scaled);
  }
  return sf_string(name) + ";q=" + std::to_string(q) + ";w=" + std::to_string(seconds);
}

std::string limit_item(std::string_view name, const Decision& decision) {
  const std::optional<std::int64_t> reset = ceil_seconds(decision.reset_after());
  return sf_string(name) + ";r=" + std::to_string(decision.remaining()) +
         ";t=" + std::to_string(reset.value_or(0));
}

HeaderFields header_fields(std::span<const LimitState> limits, std::optional<std::size_t> refused,
                           PolicyWindow window) {
  HeaderFields fields;
  for (const LimitState& l : limits) {
    if (!fields.policy.empty()) fields.policy += ", ";
    fields.policy += policy_item(l.name, l.quota, window);
    if (!fields.limit.empty()) fields.limit += ", ";
    fields.limit += limit_item(l.name, l.decision);
  }
  if (refused && *refused < limits.size())
    fields.retry_after = retry_after(limits[*refused].decision);
  return fields;
}

std::string join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (const std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string sf_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte > 0x7e) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace floodgate::http
