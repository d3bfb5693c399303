// `Config`: the rate limits `floodgate serve` enforces, read from envoyproxy/ratelimit's YAML
// configuration format unchanged (every key it reads: `shadow_mode`, `quota_mode`,
// `detailed_metric`, `value_to_metric`, `share_threshold`, `metadata`, `replaces` included),
// plus floodgate's extensions (`algorithm`, `burst`). Not
// thread-safe to build; a built `Config` is immutable and may be shared by any threads.
//
//   domain: api
//   descriptors:
//     - key: remote_address            # each request descriptor is a list of (key, value)
//       rate_limit: {unit: second, requests_per_unit: 10}
//     - key: path
//       value: "/login*"               # '*' matches any run of bytes
//       rate_limit: {unit: minute, requests_per_unit: 5, algorithm: gcra, burst: 2}
//       descriptors:                   # nested: a request descriptor of two entries
//         - key: user
//           rate_limit: {unit: hour, requests_per_unit: 100}
//
// A request descriptor of N entries matches a path of N levels. At each level the entry's key
// and exact value are tried first, then the values with wildcards (in file order), then the
// key alone (a rule without `value`). Every error names the file, the line and the value.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/core/algorithm.h"
#include "floodgate/core/internal/string_hash.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/server/unit.h"

namespace floodgate::server {

// The most descriptors (rules and the levels above them) one configuration may hold, over all of
// its files.
inline constexpr std::size_t kMaxRules = 1'000'000;

// One `rate_limit` block.
struct RateLimit {
  std::string name;                     // Optional: what another rule's `replaces` names.
  Unit unit = Unit::Second;             // Not meaningful when `unlimited`.
  std::uint32_t requests_per_unit = 0;  // 0: every request is over the limit.
  bool unlimited = false;               // Always OK, without consulting any state.
  // floodgate: how the limit decides; envoyproxy/ratelimit's fixed window by default.
  Algorithm algorithm = Algorithm::EnvoyFixedWindow;
  std::optional<std::uint64_t> burst;  // floodgate: GCRA and token bucket only; default the count.
  std::vector<std::string> replaces;   // Names of rules not evaluated when this one matches.

  // Returns the quota: `requests_per_unit` per unit, with the burst. Nothing for `unlimited`
  // and for a limit of 0. The limit must have passed `validate`.
  std::optional<Quota> quota() const;
};

// Returns an error if `limit` cannot be enforced (a rate above one per nanosecond, a burst
// given to an algorithm without one). Every rate limit passes here, whether read from a file
// or sent by a client: the parser calls it, and so does the gRPC and HTTP endpoints' reading of
// a descriptor's own `limit`.
Result<void> validate(const RateLimit& limit);

struct Descriptor;

// A value of a descriptor's `metadata`, read as YAML's core schema reads it (an unquoted `true`
// is a boolean, `12` a number): what Envoy receives in the response's dynamic metadata as a
// `google.protobuf.Value`.
struct MetadataValue {
  enum class Kind : std::uint8_t { Null, Bool, Number, String, List, Map };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<std::string> keys;     // Map: the keys, in file order, each once.
  std::vector<MetadataValue> items;  // List: the items. Map: the value of each key.
};

// The rules of one level of the tree, indexed by key: exact values, values with wildcards (in
// file order), and the rule without a value.
class Level {
 public:
  // Indexes `rules`, which must outlive the level and not move. Returns the first rule whose
  // key and value an earlier one has, and that one, if any (null otherwise).
  std::pair<const Descriptor*, const Descriptor*> index(const std::vector<Descriptor>& rules);

  // Returns the rule `key` and `value` match, or null.
  const Descriptor* find(std::string_view key, std::string_view value) const;

 private:
  using Hash = internal::StringHash;
  // Keys and values are views into the rules.
  struct Rules {
    std::unordered_map<std::string_view, const Descriptor*, Hash> exact;
    std::vector<const Descriptor*> wildcards;
    const Descriptor* any = nullptr;
  };
  std::unordered_map<std::string_view, Rules, Hash> by_key_;
};

// A node of the descriptor tree: one (key, value) level.
struct Descriptor {
  std::string key;
  std::optional<std::string> value;  // Nothing: matches any value of `key` (the default).
  std::optional<RateLimit> rate_limit;
  bool shadow_mode = false;  // Evaluated and counted, but always answered OK.
  // Over the limit, it makes the request over the limit only if every quota-mode descriptor of
  // the request is (envoyproxy/ratelimit's soft limit); its own status still says OVER_LIMIT.
  bool quota_mode = false;
  // Statistics per request descriptor: under envoyproxy/ratelimit's name for it, every level's
  // key and value (`Config::stats_key`).
  bool detailed_metric = false;
  // The value a request gives this level is in the statistics' name (for a level without a value,
  // or with a wildcard).
  bool value_to_metric = false;
  // The values this level's wildcard matches share one counter, as if they were one value.
  bool share_threshold = false;
  // Given to Envoy in the response's dynamic metadata when the descriptor is within its limit
  // (`MetadataValue::Kind::Null`: none).
  MetadataValue metadata;
  std::vector<Descriptor> descriptors;
  Level children;                      // `descriptors`, indexed.
  const Descriptor* parent = nullptr;  // The level above; null at the top.
  // Some level from the top to here has `value_to_metric`, or this one `detailed_metric`: its
  // statistics have names of their own (`Config::stats_key`).
  bool keyed_stats = false;
  // Some level from the top to here has `share_threshold` (`Config::state_key`).
  bool shares_values = false;
  // Where it was read, for messages.
  std::string file;
  int line = 0;
  // The rule's name in metrics and messages, as envoyproxy/ratelimit spells it: the domain,
  // then "key_value" (or "key") per level, joined by '.'. Two rules may share it (domain `a`
  // with key `b.c`, domain `a.b` with key `c`).
  std::string id;
  // The rule's identity, which no two rules share: the domain, then per level the key and the
  // value if any, each length-prefixed ("3:api/4:path=6:/login"). State, Redis keys and
  // counters are kept per identity.
  std::string identity;
};

// One domain: every file's descriptors for it.
struct Domain {
  std::string name;
  std::vector<Descriptor> descriptors;
  Level top;  // `descriptors`, indexed.
  std::string file;
};

// One (key, value) of a request descriptor.
struct Entry {
  std::string_view key;
  std::string_view value;
};

// What `Config::check` found.
struct ConfigCheck {
  std::vector<std::string> files;     // Read, in order.
  std::vector<std::string> errors;    // Each "file:line: what"; none: the configuration loads.
  std::vector<std::string> warnings;  // What `load` would skip.
  std::size_t domains = 0;            // Of the files without errors.
  std::size_t rules = 0;              // Descriptors read, every level counted.
};

class Config {
 public:
  Config() = default;
  // Moving keeps the indexes valid (they point into the tree, whose nodes do not move).
  Config(Config&&) noexcept = default;
  Config& operator=(Config&&) noexcept = default;
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;

  // Reads one file's text; `file` names it in errors. Bounds (each an error naming the file and
  // line): `kMaxRules` descriptors, and the YAML reader's (nesting, nodes, aliases; see
  // docs/serve.md). A key given twice in one mapping is an error naming both lines.
  static Result<Config> parse(std::string_view text, const std::string& file);

  // Reads every `*.yaml` and `*.yml` file in `path` (a directory, in name order) or the file
  // `path`. A domain defined twice, an unknown key, a duplicate descriptor, a bad unit or number:
  // an error naming the file and line. An entry of the directory named so that is not a file
  // (a dangling symbolic link, a directory, a FIFO or device) is skipped and named in
  // `warnings()`.
  // With `merge_domains` (envoyproxy/ratelimit's MERGE_DOMAIN_CONFIG), a domain may be defined in
  // several files: their descriptors are merged, and two with one key and value are an error.
  static Result<Config> load(const std::string& path, bool merge_domains = false);

  // Reads `path` as `load` does, but goes on past errors: every file is read, and in each a
  // descriptor with an error is skipped and its siblings read on, so that one run names every
  // mistake it can (a file that is not valid YAML stops at its first). For configuration checks
  // in CI.
  static ConfigCheck check(const std::string& path, bool merge_domains = false);

  // Returns what `load` skipped, one message each.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Returns the files read, in order.
  const std::vector<std::string>& files() const { return files_; }
  // Returns a hash of the files' names and texts, in order (FNV-1a, kept to 53 bits so that a
  // Prometheus gauge holds it exactly): equal files, equal hashes.
  std::uint64_t hash() const { return hash_ & ((std::uint64_t{1} << 53) - 1); }
  // Returns how many descriptors have a rate limit: the rules.
  std::size_t rules() const { return rules_; }
  // Returns a hash of each file's name and text, by file.
  const std::map<std::string, std::uint64_t, std::less<>>& file_hashes() const {
    return file_hashes_;
  }

  // Returns the rule that limits the request descriptor `entries` in `domain`, or null if none
  // does (an unknown domain, no matching path, or a path whose last level has no rate limit).
  const Descriptor* match(std::string_view domain, std::span<const Entry> entries) const;
  // `match` in `domain` (one of this configuration's), for a caller that looked it up once for
  // every descriptor of a request.
  static const Descriptor* match(const Domain& domain, std::span<const Entry> entries);

  // Returns the key the state of request descriptor `entries` is kept under when `rule` (what
  // `match` returned for them) limits it: the values, each length-prefixed; a level with
  // `share_threshold` gives its wildcard instead of the value, so every value it matches shares
  // one counter.
  static std::string state_key(const Descriptor& rule, std::span<const Entry> entries);

  // Returns the key envoyproxy/ratelimit counts request descriptor `entries` of `domain` in, less
  // the window's start: the domain, '_', then per entry its key, '_', its value, '_' (a level of
  // `rule` with `share_threshold` gives its wildcard instead of the value). `rule` is what `match`
  // returned for them, or null for a descriptor's own limit.
  static std::string envoy_key(std::string_view domain, const Descriptor* rule,
                               std::span<const Entry> entries);

  // Returns the name envoyproxy/ratelimit gives the statistics of request descriptor `entries` in
  // `domain` under `rule` (what `match` returned for them), where `rule.keyed_stats`: with
  // `detailed_metric`, the domain then "key_value" for every level ("api.user_alice.path_/x"; a
  // level with `share_threshold` gives its wildcard); otherwise the rule's id, with the request's
  // value at each level that has `value_to_metric` and no value or a wildcard.
  static std::string stats_key(std::string_view domain, const Descriptor& rule,
                               std::span<const Entry> entries);

  // Returns the rules as envoyproxy/ratelimit's `/rlconfig` lists them: a line per descriptor
  // with a rate limit, domains in name order and descriptors depth first in file order,
  // "<id>: unit=<UNIT> requests_per_unit=<N>, shadow_mode: <bool>, quota_mode: <bool>"; then,
  // where they apply, ", unlimited: true" (with unit=UNKNOWN requests_per_unit=0, as upstream),
  // ", algorithm: <name>", ", burst: <N>", ", name: <name>" and ", replaces: <a>,<b>".
  std::string dump() const;

  // Returns the domain `name`, or null.
  const Domain* domain(std::string_view name) const;
  // Returns the domains' names, in order.
  std::vector<std::string> domain_names() const;

  // `parse` for one of several texts of one configuration: `rules` counts the descriptors read
  // so far, over all of them, against `kMaxRules`.
  static Result<Config> parse(std::string_view text, const std::string& file, std::size_t& rules);

 private:
  // Reads `files` into this configuration, counting descriptors in `rules`. Without `errors`,
  // returns the first error; with it, adds every error there, reads on, and returns nothing.
  Result<void> read_files(const std::vector<std::string>& files, bool merge_domains,
                          std::size_t& rules, std::vector<std::string>* errors);
  // `parse`; with `errors`, a descriptor with an error is skipped and its error added there, the
  // first of them returned (`check`).
  static Result<Config> parse(std::string_view text, const std::string& file, std::size_t& rules,
                              std::vector<Error>* errors);

  Result<void> add(Config&& other, bool merge_domains);

  // Domains are kept behind pointers so that the indexes into them survive moves.
  std::map<std::string, std::unique_ptr<Domain>, std::less<>> domains_;
  std::vector<std::string> warnings_;
  std::vector<std::string> files_;
  std::uint64_t hash_ = 0xcbf29ce484222325;  // FNV-1a's offset basis.
  std::size_t rules_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> file_hashes_;
};

// Calls `f(d)` for every descriptor of `level` and of the levels below it, depth first in file
// order.
template <class F>
void for_each_descriptor(const std::vector<Descriptor>& level, const F& f) {
  for (const Descriptor& d : level) {
    f(d);
    for_each_descriptor(d.descriptors, f);
  }
}

// Returns what changed from `before` to `after`, for a reload's log line: the files added,
// removed and changed, then the rules (by identity, named by id) added, removed and changed
// (with the fields of their definition that changed, "requests_per_unit=5 -> requests_per_unit=3"),
// at most 10 names of each, "; " between them; "nothing changed" when nothing did. Past
// `max_rules` rules in either, the rules are counted, not compared one by one (a reload of a
// million rules would otherwise build two maps of them for one log line).
std::string describe_change(const Config& before, const Config& after,
                            std::size_t max_rules = 100'000);

// Returns what `config` is, for the log: "2 files (a.yaml, b.yaml), 2 domains (api, mail), 5
// rules" (at most 10 names of each).
std::string describe_loaded(const Config& config);

// Reports whether `value` matches `pattern`, where '*' matches any run of bytes (none included)
// and every other byte itself.
bool wildcard_match(std::string_view pattern, std::string_view value) noexcept;

}  // namespace floodgate::server
