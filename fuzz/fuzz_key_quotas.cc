// Fuzz target: the per-key rule file. Rules parsed from any text match every key as a scan of
// the rules in order would (the first glob that matches wins), whatever mix of exact patterns
// (looked up by hash) and globs they hold; errors let no unprintable byte through.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/replay/key_quotas.h"
#include "fuzz_input.h"

namespace {

// A backtracking matcher written from the definition, to check `glob_match` against.
bool reference_match(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern[0] == '*') {
    for (std::size_t skip = 0; skip <= text.size(); ++skip) {
      if (reference_match(pattern.substr(1), text.substr(skip))) return true;
    }
    return false;
  }
  if (text.empty()) return false;
  if (pattern[0] == '\\' && pattern.size() > 1) {
    return pattern[1] == text[0] && reference_match(pattern.substr(2), text.substr(1));
  }
  if (pattern[0] == '?' || pattern[0] == text[0]) {
    return reference_match(pattern.substr(1), text.substr(1));
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::fail;
  floodgate::fuzz::FuzzInput in(data, size);
  // The first lines are keys to look up, until an empty line; the rest is the rule file.
  std::vector<std::string_view> keys;
  while (!in.empty() && keys.size() < 8) {
    const std::string_view key = in.line();
    if (key.empty()) break;
    keys.push_back(key.substr(0, 64));
  }
  const std::string_view text = in.rest();
  const auto rules = floodgate::replay::KeyQuotas::parse(text, "fuzz");
  if (!rules) {
    for (const char c : rules.error().message()) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b >= 0x7f) fail("an unescaped byte in the message", rules.error().message());
    }
    return 0;
  }
  for (const std::string_view key : keys) {
    std::optional<floodgate::Quota> scan;
    for (const auto& rule : rules->rules()) {
      const bool matched = floodgate::replay::glob_match(rule.pattern, key);
      if (rule.pattern.size() <= 16 && key.size() <= 16 &&
          matched != reference_match(rule.pattern, key)) {
        fail("glob_match disagrees with the reference", rule.pattern);
      }
      if (matched) {
        scan = rule.quota;
        break;
      }
    }
    if (rules->match(key) != scan) fail("match differs from a scan in order", key);
  }
  return 0;
}
