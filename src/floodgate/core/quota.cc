#include "floodgate/core/quota.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <optional>
#include <utility>

#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/time_math.h"

namespace floodgate {

using internal::format_duration;

namespace {

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

struct Unit {
  std::string_view name;
  std::int64_t nanos;
};

// Period units from the largest to the smallest, as `format_duration` writes them.
constexpr std::array<Unit, 7> kUnits = {{
    {"d", 86'400 * kNanosPerSecond},
    {"h", 3'600 * kNanosPerSecond},
    {"m", 60 * kNanosPerSecond},
    {"s", kNanosPerSecond},
    {"ms", 1'000'000},
    {"us", 1'000},
    {"ns", 1},
}};

// Other spellings `Quota::parse` accepts.
constexpr std::array<Unit, 9> kUnitAliases = {{
    {"day", 86'400 * kNanosPerSecond},
    {"hour", 3'600 * kNanosPerSecond},
    {"min", 60 * kNanosPerSecond},
    {"minute", 60 * kNanosPerSecond},
    {"sec", kNanosPerSecond},
    {"second", kNanosPerSecond},
    {"\xC2\xB5s", 1'000},  // µs, MICRO SIGN
    {"\xCE\xBCs", 1'000},  // μs, GREEK SMALL LETTER MU
    {"nsec", 1},
}};

constexpr std::string_view kExpectedForm =
    "expected \"<count>/<period>\", e.g. \"100/s\" or \"10/500ms burst 20\"";

// Returns the rule `period`, `count` and `burst` break, or nothing if they make a valid quota.
std::optional<std::string> broken_rule(Nanos period, std::uint64_t count, std::uint64_t burst) {
  if (count == 0) return "rate must be at least 1 per period (got 0)";
  if (period.count() <= 0) {
    return "period must be positive (got " + format_duration(period) + ")";
  }
  if (burst == 0) return "burst must be at least 1 (got 0)";
  const auto period_ns = static_cast<std::uint64_t>(period.count());
  if (count > period_ns) {
    return "rate must be at most 1 per nanosecond (got " + std::to_string(count) + " per " +
           format_duration(period) + ")";
  }
  // ceil(period / count) >= 1, and burst x interval must fit the largest window.
  const std::uint64_t interval = (period_ns + count - 1) / count;
  constexpr auto kMax = static_cast<std::uint64_t>(internal::kMaxWindow);
  if (burst > kMax / interval) {
    return "burst x interval must be at most 2^61 ns, about 73 years (got burst " +
           std::to_string(burst) + " x interval " +
           format_duration(Nanos{static_cast<std::int64_t>(interval)}) + ")";
  }
  return std::nullopt;
}

Nanos interval_of(Nanos period, std::uint64_t count) {
  const auto period_ns = static_cast<std::uint64_t>(period.count());
  return Nanos{static_cast<std::int64_t>((period_ns + count - 1) / count)};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits the leading run of characters for which `pred` holds off `s`.
template <typename Pred>
std::string_view take_while(std::string_view& s, Pred pred) {
  std::size_t n = 0;
  while (n < s.size() && pred(static_cast<unsigned char>(s[n]))) ++n;
  std::string_view head = s.substr(0, n);
  s.remove_prefix(n);
  return head;
}

bool is_digit(unsigned char c) { return std::isdigit(c) != 0; }
bool is_space(unsigned char c) { return std::isspace(c) != 0; }
bool is_word(unsigned char c) { return std::isalpha(c) != 0 || c >= 0x80; }

}  // namespace

Quota Quota::per_second(std::uint64_t count) { return per(std::chrono::seconds(1), count); }
Quota Quota::per_minute(std::uint64_t count) { return per(std::chrono::minutes(1), count); }
Quota Quota::per_hour(std::uint64_t count) { return per(std::chrono::hours(1), count); }

Quota Quota::per(Nanos period, std::uint64_t count) {
  Result<Quota> quota = make(period, count, count);
  FLOODGATE_CHECK(quota.has_value(), quota ? std::string() : quota.error().message());
  return *std::move(quota);
}

Quota Quota::with_burst(std::uint64_t burst) const {
  Result<Quota> quota = make(period_, count_, burst);
  FLOODGATE_CHECK(quota.has_value(), quota ? std::string() : quota.error().message());
  return *std::move(quota);
}

Result<Quota> Quota::make(Nanos period, std::uint64_t count, std::uint64_t burst) {
  if (std::optional<std::string> rule = broken_rule(period, count, burst)) {
    return Error("quota " + std::to_string(count) + " per " + format_duration(period) + " burst " +
                 std::to_string(burst) + ": " + *rule);
  }
  return Quota(period, count, burst, interval_of(period, count));
}

Result<Quota> Quota::parse(std::string_view text) {
  const std::string prefix = "quota " + internal::quoted(text) + ": ";
  auto fail = [&prefix](const std::string& why) { return Error(prefix + why); };
  auto parse_number = [&](std::string_view digits, std::string_view what,
                          std::uint64_t& out) -> std::optional<Error> {
    if (digits.empty()) return fail(std::string(kExpectedForm));
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    if (ec == std::errc::result_out_of_range) {
      return fail(std::string(what) + " is out of range (got " + internal::quoted(digits) + ")");
    }
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      return fail(std::string(what) + " must be a whole number (got " + internal::quoted(digits) +
                  ")");
    }
    return std::nullopt;
  };

  std::string_view rest = trim(text);
  if (rest.empty()) {
    return fail(std::string(kExpectedForm));
  }

  std::uint64_t count = 0;
  std::string_view count_text =
      take_while(rest, [](unsigned char c) { return c != '/' && !std::isspace(c); });
  if (auto error = parse_number(count_text, "count", count)) return *error;
  take_while(rest, is_space);
  if (rest.empty() || rest.front() != '/') {
    return fail("expected \"/\" and a period after the count, e.g. " +
                internal::quoted(std::string(count_text) + "/s"));
  }
  rest.remove_prefix(1);
  take_while(rest, is_space);

  // The period: an optional multiplier, then a unit.
  std::uint64_t multiplier = 1;
  std::string_view multiplier_text = take_while(rest, is_digit);
  if (!multiplier_text.empty()) {
    if (auto error = parse_number(multiplier_text, "period", multiplier)) return *error;
  }
  if (!rest.empty() && (rest.front() == '.' || rest.front() == ',')) {
    return fail("the period must be a whole number of units (got " + internal::quoted(text) +
                "); write a smaller unit, e.g. 500ms for 0.5s");
  }
  take_while(rest, is_space);
  std::string_view unit_text = take_while(rest, is_word);
  const Unit* unit = nullptr;
  for (const Unit& u : kUnits) {
    if (u.name == unit_text) unit = &u;
  }
  for (const Unit& u : kUnitAliases) {
    if (u.name == unit_text) unit = &u;
  }
  if (unit == nullptr) {
    if (unit_text.empty()) {
      return fail("expected a period unit after \"/\" (ns, us, ms, s, m, h or d)");
    }
    return fail("unknown period unit " + internal::quoted(unit_text) +
                " (use ns, us, ms, s, m, h or d)");
  }
  std::int64_t period_ns = 0;
  if (multiplier > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
      __builtin_mul_overflow(static_cast<std::int64_t>(multiplier), unit->nanos, &period_ns)) {
    return fail("period is out of range (got " +
                internal::quoted(std::string(multiplier_text) + std::string(unit_text)) +
                "; at most about 292 years)");
  }

  // An optional "burst <n>".
  std::uint64_t burst = count;
  take_while(rest, is_space);
  if (!rest.empty()) {
    std::string_view word = take_while(rest, is_word);
    if (word != "burst") {
      return fail("unexpected " + internal::quoted(word.empty() ? rest : word) +
                  " after the period (expected \"burst <n>\" or nothing)");
    }
    take_while(rest, is_space);
    std::string_view burst_text =
        take_while(rest, [](unsigned char c) { return !std::isspace(c); });
    if (burst_text.empty()) return fail("expected a number after \"burst\"");
    if (auto error = parse_number(burst_text, "burst", burst)) return *error;
    take_while(rest, is_space);
    if (!rest.empty()) {
      return fail("unexpected " + internal::quoted(rest) + " after the burst");
    }
  }

  if (std::optional<std::string> rule = broken_rule(Nanos{period_ns}, count, burst)) {
    return fail(*rule);
  }
  return Quota(Nanos{period_ns}, count, burst, interval_of(Nanos{period_ns}, count));
}

std::string Quota::to_string() const {
  std::string period = format_duration(period_);
  // "100/1s" reads better as "100/s".
  if (period.size() > 1 && period[0] == '1' &&
      !std::isdigit(static_cast<unsigned char>(period[1]))) {
    period.erase(0, 1);
  }
  std::string text = std::to_string(count_) + "/" + period;
  if (burst_ != count_) text += " burst " + std::to_string(burst_);
  return text;
}

std::string internal::with_commas(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string internal::percent(std::uint64_t part, std::uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

std::string internal::quoted(std::string_view text, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  const std::size_t shown = std::min(text.size(), max_bytes);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (shown < text.size()) out += "...";
  out += '"';
  return out;
}

std::string internal::format_duration(Nanos d) {
  const std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  for (const Unit& unit : kUnits) {
    if (ns % unit.nanos == 0) return std::to_string(ns / unit.nanos) + std::string(unit.name);
  }
  return std::to_string(ns) + "ns";
}

}  // namespace floodgate
