// Fuzz target: the per-key rule file. Rules parsed from any text match every key as a scan of
// the rules in order would (the first glob that matches wins), whatever mix of exact patterns
// (looked up by hash) and globs they hold; errors let no unprintable byte through.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/replay/key_quotas.h"
#include "fuzz_input.h"

namespace {

// A matcher written from the definition, by dynamic programming over (pattern, text) positions
// (quadratic, unlike a naive backtracking one), to check `glob_match` against.
bool reference_match(std::string_view pattern, std::string_view text) {
  // Split the pattern into tokens: a star, any one byte, or a literal byte (after `\`).
  struct Token {
    enum Kind : std::uint8_t { Star, Any, Byte } kind;
    char byte;
  };
  std::vector<Token> tokens;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '*') {
      tokens.push_back({Token::Star, 0});
    } else if (pattern[i] == '?') {
      tokens.push_back({Token::Any, 0});
    } else if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      tokens.push_back({Token::Byte, pattern[++i]});
    } else {
      tokens.push_back({Token::Byte, pattern[i]});
    }
  }
  // match[j]: the tokens so far match text[0, j).
  std::vector<char> match(text.size() + 1, 0);
  match[0] = 1;
  for (const Token& token : tokens) {
    std::vector<char> next(text.size() + 1, 0);
    for (std::size_t j = 0; j <= text.size(); ++j) {
      if (token.kind == Token::Star) {
        next[j] = static_cast<char>(match[j] || (j > 0 && next[j - 1]));
      } else if (j > 0 && match[j - 1]) {
        next[j] = static_cast<char>(token.kind == Token::Any || token.byte == text[j - 1]);
      }
    }
    match = std::move(next);
  }
  return match[text.size()] != 0;
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
      if (matched != reference_match(rule.pattern, key)) {
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
