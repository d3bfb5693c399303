#include "floodgate/replay/key_quotas.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "floodgate/core/internal/format.h"

namespace floodgate::replay {
namespace {

using internal::quoted;

// Returns the text `pattern` matches if it has no wildcards (`\` escapes removed), or nothing.
std::optional<std::string> literal_of(std::string_view pattern) {
  std::string literal;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' || c == '?') return std::nullopt;
    if (c == '\\' && i + 1 < pattern.size()) {
      literal += pattern[++i];
    } else {
      literal += c;
    }
  }
  return literal;
}

}  // namespace

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
      return Error(where() + "rule " + quoted(line) +
                   " has a pattern but no quota (write: pattern quota, e.g. "
                   "premium:* 100/s burst 50)");
    }
    const std::string_view pattern = line.substr(0, gap);
    std::string_view quota_text = line.substr(gap);
    while (!quota_text.empty() && (quota_text.front() == ' ' || quota_text.front() == '\t')) {
      quota_text.remove_prefix(1);
    }
    Result<Quota> quota = Quota::parse(quota_text);
    if (!quota)
      return Error(where() + "pattern " + quoted(pattern) + ": " + quota.error().message());
    bool known = false;
    for (const Quota& q : distinct) known = known || q == *quota;
    if (!known) {
      if (distinct.size() == kMaxDistinct) {
        return Error(where() + "more than " + std::to_string(kMaxDistinct) +
                     " distinct quotas (got a new one, " + quota->to_string() + ")");
      }
      distinct.push_back(*quota);
    }
    const std::size_t index = quotas.rules_.size();
    quotas.rules_.push_back({std::string(pattern), *quota});
    if (std::optional<std::string> literal = literal_of(pattern)) {
      quotas.exact_.try_emplace(*std::move(literal), index);  // The first such rule wins.
    } else {
      quotas.globs_.push_back(index);
    }
  }
  return quotas;
}

Result<KeyQuotas> KeyQuotas::load(const std::string& path) {
  const auto fail = [&](const char* what, int error) {
    return Error("quota file \"" + path + "\": " + what + ": " + std::strerror(error));
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (file == nullptr) return fail("cannot open", errno);
  struct stat st {};
  if (::fstat(::fileno(file.get()), &st) != 0) return fail("cannot read", errno);
  if (S_ISDIR(st.st_mode)) return fail("cannot read", EISDIR);
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) return fail("read error", errno);
  return parse(text, path);
}

std::optional<Quota> KeyQuotas::match(std::string_view key) const {
  const auto exact = exact_.find(key);
  const std::size_t first_exact = exact == exact_.end() ? rules_.size() : exact->second;
  for (const std::size_t index : globs_) {
    if (index > first_exact) break;
    if (glob_match(rules_[index].pattern, key)) return rules_[index].quota;
  }
  if (first_exact < rules_.size()) return rules_[first_exact].quota;
  return std::nullopt;
}

}  // namespace floodgate::replay
