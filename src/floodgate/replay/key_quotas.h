// Per-key quotas for `floodgate replay`, from a small text file of rules, one a line:
//
//     # pattern     quota
//     premium:*     100/s burst 50
//     10.0.0.?      1000/min
//     *             10/s burst 5
//
// A pattern is a glob (`*` any run of bytes, `?` one byte, `\` escapes the next byte) matched
// against the whole key; the first rule that matches gives the key its quota, and a key no rule
// matches gets the default. Blank lines are ignored, and a `#` at the start of a line or after a
// space or tab starts a comment. Errors name the file, the line and the value. Thread-safe for
// reading once built.
//
// A match costs one hash lookup for the patterns without wildcards (however many there are) and
// one glob test per pattern with wildcards that comes before the exact match, if any.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/core/internal/string_hash.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"

namespace floodgate::replay {

// Reports whether `text` matches the glob `pattern` as a whole.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// One rule: keys matching `pattern` get `quota`.
struct KeyQuotaRule {
  std::string pattern;                 // A glob (`glob_match`) over the whole key.
  Quota quota = Quota::per_second(1);  // The quota of the keys it matches.
};

// An ordered list of rules; the first match wins.
class KeyQuotas {
 public:
  // At most this many distinct quotas (the keyed limiter's tiers besides the default).
  static constexpr std::size_t kMaxDistinct = 255;

  // Parses rules from `text`; `origin` names it in errors (a file name).
  static Result<KeyQuotas> parse(std::string_view text, std::string_view origin);

  // Reads and parses the file at `path`.
  static Result<KeyQuotas> load(const std::string& path);

  // Returns the quota of the first rule that matches `key`, or nothing.
  std::optional<Quota> match(std::string_view key) const;

  // Returns the rules, in the order they are tried.
  const std::vector<KeyQuotaRule>& rules() const noexcept { return rules_; }

 private:
  using Hash = internal::StringHash;

  std::vector<KeyQuotaRule> rules_;
  // The patterns without wildcards, unescaped, each with the index of its first rule.
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> exact_;
  // The indexes of the rules whose patterns have wildcards, in order.
  std::vector<std::size_t> globs_;
};

}  // namespace floodgate::replay
