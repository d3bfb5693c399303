#include "floodgate/replay/key_quotas.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace floodgate::replay {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  // Iterative matching with one backtrack point: the last `*` and where its run ends.
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
      continue;
    }
    if (p < pattern.size()) {
      const bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      const char want = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && want == '?') || want == text[t]) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star + 1;  // Let the last `*` take one more byte.
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<KeyQuotas> KeyQuotas::parse(std::string_view text, std::string_view origin) {
  KeyQuotas quotas;
  std::vector<Quota> distinct;
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++number;
    const auto where = [&] { return std::string(origin) + ":" + std::to_string(number) + ": "; };
    // A `#` after a space or tab starts a comment to the end of the line.
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '#' && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t gap = line.find_first_of(" \t");
    if (gap == std::string_view::npos) {
      return Error(where() + "rule \"" + std::string(line) +
                   "\" has a pattern but no quota (write: pattern quota, e.g. "
                   "premium:* 100/s burst 50)");
    }
    const std::string_view pattern = line.substr(0, gap);
    std::string_view quota_text = line.substr(gap);
    while (!quota_text.empty() && (quota_text.front() == ' ' || quota_text.front() == '\t')) {
      quota_text.remove_prefix(1);
    }
    Result<Quota> quota = Quota::parse(quota_text);
    if (!quota)
      return Error(where() + "pattern \"" + std::string(pattern) +
                   "\": " + quota.error().message());
    bool known = false;
    for (const Quota& q : distinct) known = known || q == *quota;
    if (!known) {
      if (distinct.size() == kMaxDistinct) {
        return Error(where() + "more than " + std::to_string(kMaxDistinct) +
                     " distinct quotas (got a new one, " + quota->to_string() + ")");
      }
      distinct.push_back(*quota);
    }
    quotas.rules_.push_back({std::string(pattern), *quota});
  }
  return quotas;
}

Result<KeyQuotas> KeyQuotas::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error("quota file \"" + path + "\": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error("quota file \"" + path + "\": read error");
  return parse(text.str(), path);
}

std::optional<Quota> KeyQuotas::match(std::string_view key) const {
  for (const KeyQuotaRule& rule : rules_) {
    if (glob_match(rule.pattern, key)) return rule.quota;
  }
  return std::nullopt;
}

}  // namespace floodgate::replay
