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

std::string policy_item(std::string_view name, const Quota& quota) {
  const std::int64_t period = quota.period().count();
  const std::int64_t window = period / kSecond + (period % kSecond != 0 ? 1 : 0);
  std::uint64_t q = quota.count();
  if (period % kSecond != 0) {
    // count x window / period, rounded down: never more than the quota admits.
    const Uint128 scaled = static_cast<Uint128>(quota.count()) * static_cast<Uint128>(window) *
                           static_cast<Uint128>(kSecond) / static_cast<Uint128>(period);
    q = scaled > std::numeric_limits<std::uint64_t>::max()
            ? std::numeric_limits<std::uint64_t>::max()
            : static_cast<std::uint64_t>(scaled);
  }
  return sf_string(name) + ";q=" + std::to_string(q) + ";w=" + std::to_string(window);
}

std::string limit_item(std::string_view name, const Decision& decision) {
  const std::optional<std::int64_t> reset = ceil_seconds(decision.reset_after());
  return sf_string(name) + ";r=" + std::to_string(decision.remaining()) +
         ";t=" + std::to_string(reset.value_or(0));
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
