#include "floodgate/server/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/format.h"

namespace floodgate::server {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

// Where a node was read: "file:line".
std::string where(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1);
}

Error error_at(const std::string& file, const YAML::Node& node, const std::string& message) {
  return Error(where(file, node) + ": " + message);
}

Result<std::string> scalar(const std::string& file, const YAML::Node& node, std::string_view key) {
  if (!node.IsScalar()) {
    return error_at(file, node, std::string(key) + " must be a single value");
  }
  return node.Scalar();
}

Result<bool> boolean(const std::string& file, const YAML::Node& node, std::string_view key) {
  Result<std::string> text = scalar(file, node, key);
  if (!text) return text.error();
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  return error_at(
      file, node,
      std::string(key) + " must be true or false (got " + internal::quoted(*text) + ")");
}

Result<std::uint64_t> whole_number(const std::string& file, const YAML::Node& node,
                                   std::string_view key, std::uint64_t max) {
  Result<std::string> text = scalar(file, node, key);
  if (!text) return text.error();
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || n > max) {
    return error_at(file, node,
                    std::string(key) + " must be a whole number from 0 to " + std::to_string(max) +
                        " (got " + internal::quoted(*text) + ")");
  }
  return n;
}

// Rejects keys of `node` (a map) outside `known`, naming the first one.
Result<void> only_keys(const std::string& file, const YAML::Node& node, std::string_view what,
                       std::initializer_list<std::string_view> known,
                       std::initializer_list<std::string_view> unsupported = {}) {
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (std::find(unsupported.begin(), unsupported.end(), key) != unsupported.end()) {
      return error_at(file, kv.first,
                      std::string(what) + ": " + internal::quoted(key) +
                          " (envoyproxy/ratelimit) is not supported by floodgate");
    }
    std::string list;
    for (const std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return error_at(
        file, kv.first,
        std::string(what) + ": unknown key " + internal::quoted(key) + " (known: " + list + ")");
  }
  return {};
}

Result<Unit> parse_unit(const std::string& file, const YAML::Node& node) {
  Result<std::string> text = scalar(file, node, "unit");
  if (!text) return text.error();
  std::string lower = *text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const Unit u :
       {Unit::Second, Unit::Minute, Unit::Hour, Unit::Day, Unit::Week, Unit::Month, Unit::Year}) {
    if (lower == to_string(u)) return u;
  }
  return error_at(file, node,
                  "unit must be second, minute, hour, day, week, month or year (got " +
                      internal::quoted(*text) + ")");
}

Result<Algorithm> parse_algorithm(const std::string& file, const YAML::Node& node) {
  Result<std::string> text = scalar(file, node, "algorithm");
  if (!text) return text.error();
  for (const Algorithm a : {Algorithm::FixedWindow, Algorithm::Gcra, Algorithm::TokenBucket,
                            Algorithm::SlidingWindow}) {
    if (*text == to_string(a)) return a;
  }
  return error_at(file, node,
                  "algorithm must be fixed-window, gcra, token-bucket or sliding-window (got " +
                      internal::quoted(*text) + ")");
}

Result<RateLimit> parse_rate_limit(const std::string& file, const YAML::Node& node) {
  if (!node.IsMap()) return error_at(file, node, "rate_limit must be a map");
  if (Result<void> ok = only_keys(
          file, node, "rate_limit",
          {"unit", "requests_per_unit", "name", "unlimited", "replaces", "algorithm", "burst"});
      !ok) {
    return ok.error();
  }
  RateLimit r;
  if (const YAML::Node n = node["unlimited"]) {
    Result<bool> b = boolean(file, n, "unlimited");
    if (!b) return b.error();
    r.unlimited = *b;
  }
  if (const YAML::Node n = node["name"]) {
    Result<std::string> s = scalar(file, n, "name");
    if (!s) return s.error();
    r.name = *s;
  }
  if (const YAML::Node n = node["replaces"]) {
    if (!n.IsSequence()) return error_at(file, n, "replaces must be a list of {name: ...}");
    for (const YAML::Node& item : n) {
      if (!item.IsMap() || !item["name"]) {
        return error_at(file, item, "replaces must be a list of {name: ...}");
      }
      if (Result<void> ok = only_keys(file, item, "replaces", {"name"}); !ok) return ok.error();
      Result<std::string> s = scalar(file, item["name"], "name");
      if (!s) return s.error();
      r.replaces.push_back(*s);
    }
  }
  if (r.unlimited) {
    for (const char* k : {"unit", "requests_per_unit", "algorithm", "burst"}) {
      if (node[k]) {
        return error_at(file, node[k], std::string("an unlimited rate_limit must not set ") + k);
      }
    }
    return r;
  }
  const YAML::Node unit = node["unit"];
  if (!unit) return error_at(file, node, "rate_limit needs a unit (or unlimited: true)");
  Result<Unit> u = parse_unit(file, unit);
  if (!u) return u.error();
  r.unit = *u;
  const YAML::Node count = node["requests_per_unit"];
  if (!count) return error_at(file, node, "rate_limit needs requests_per_unit");
  Result<std::uint64_t> n =
      whole_number(file, count, "requests_per_unit", std::numeric_limits<std::uint32_t>::max());
  if (!n) return n.error();
  r.requests_per_unit = static_cast<std::uint32_t>(*n);
  if (const YAML::Node a = node["algorithm"]) {
    Result<Algorithm> algorithm = parse_algorithm(file, a);
    if (!algorithm) return algorithm.error();
    r.algorithm = *algorithm;
  }
  if (const YAML::Node b = node["burst"]) {
    if (r.algorithm != Algorithm::Gcra && r.algorithm != Algorithm::TokenBucket) {
      return error_at(file, b,
                      "burst is for gcra and token-bucket only (this rate_limit's algorithm is " +
                          std::string(to_string(r.algorithm)) + ")");
    }
    Result<std::uint64_t> burst =
        whole_number(file, b, "burst", std::numeric_limits<std::uint32_t>::max());
    if (!burst) return burst.error();
    r.burst = *burst;
  }
  if (!r.name.empty() &&
      std::find(r.replaces.begin(), r.replaces.end(), r.name) != r.replaces.end()) {
    return error_at(file, node["replaces"],
                    "rate_limit " + internal::quoted(r.name) +
                        " replaces itself: it would never apply (remove its name from replaces)");
  }
  if (Result<void> ok = validate(r); !ok) return error_at(file, node, ok.error().message());
  return r;
}

// Appends `part` to `out` length-prefixed: "6:/login".
void append_part(std::string& out, std::string_view part) {
  out += std::to_string(part.size());
  out += ':';
  out += part;
}

struct Parent {
  const std::string& id;
  const std::string& identity;
};

Result<Descriptor> parse_descriptor(const std::string& file, const YAML::Node& node,
                                    const Parent& parent);

Result<std::vector<Descriptor>> parse_descriptors(const std::string& file, const YAML::Node& node,
                                                  const Parent& parent) {
  std::vector<Descriptor> out;
  if (!node || node.IsNull()) return out;
  if (!node.IsSequence()) return error_at(file, node, "descriptors must be a list");
  // Siblings by identity (unique per level, as the key and value are): line of the first.
  std::unordered_map<std::string, int> seen;
  for (const YAML::Node& item : node) {
    Result<Descriptor> d = parse_descriptor(file, item, parent);
    if (!d) return d.error();
    if (const auto [first, added] = seen.emplace(d->identity, d->line); !added) {
      return Error(file + ":" + std::to_string(d->line) + ": duplicate descriptor composite key " +
                   internal::quoted(d->id) + " (first at line " + std::to_string(first->second) +
                   ")");
    }
    out.push_back(std::move(*d));
  }
  return out;
}

Result<Descriptor> parse_descriptor(const std::string& file, const YAML::Node& node,
                                    const Parent& parent) {
  if (!node.IsMap()) return error_at(file, node, "a descriptor must be a map with a key");
  if (Result<void> ok =
          only_keys(file, node, "descriptor",
                    {"key", "value", "rate_limit", "descriptors", "shadow_mode", "detailed_metric"},
                    {"quota_mode", "value_to_metric", "share_threshold"});
      !ok) {
    return ok.error();
  }
  Descriptor d;
  d.file = file;
  d.line = node.Mark().line + 1;
  const YAML::Node key = node["key"];
  if (!key) return error_at(file, node, "a descriptor needs a key");
  Result<std::string> k = scalar(file, key, "key");
  if (!k) return k.error();
  if (k->empty()) return error_at(file, key, "a descriptor's key must not be empty");
  d.key = *k;
  if (const YAML::Node value = node["value"]) {
    Result<std::string> v = scalar(file, value, "value");
    if (!v) return v.error();
    d.value = *v;
  }
  d.id = parent.id + "." + d.key + (d.value ? "_" + *d.value : "");
  d.identity = parent.identity + "/";
  append_part(d.identity, d.key);
  if (d.value) {
    d.identity += '=';
    append_part(d.identity, *d.value);
  }
  if (const YAML::Node r = node["rate_limit"]) {
    Result<RateLimit> rate = parse_rate_limit(file, r);
    if (!rate) return rate.error();
    d.rate_limit = std::move(*rate);
  }
  for (const auto& [name, field] : {std::pair{"shadow_mode", &d.shadow_mode},
                                    std::pair{"detailed_metric", &d.detailed_metric}}) {
    if (const YAML::Node n = node[name]) {
      Result<bool> b = boolean(file, n, name);
      if (!b) return b.error();
      *field = *b;
    }
  }
  Result<std::vector<Descriptor>> children =
      parse_descriptors(file, node["descriptors"], Parent{d.id, d.identity});
  if (!children) return children.error();
  d.descriptors = std::move(*children);
  return d;
}

// Builds every level's index, once the tree no longer changes.
void index_tree(std::vector<Descriptor>& level) {
  for (Descriptor& d : level) {
    index_tree(d.descriptors);
    d.children.index(d.descriptors);
  }
}

}  // namespace

std::string_view to_string(Unit unit) noexcept {
  switch (unit) {
    case Unit::Second:
      return "second";
    case Unit::Minute:
      return "minute";
    case Unit::Hour:
      return "hour";
    case Unit::Day:
      return "day";
    case Unit::Week:
      return "week";
    case Unit::Month:
      return "month";
    case Unit::Year:
      return "year";
  }
  return "?";
}

Nanos length_of(Unit unit) noexcept {
  constexpr std::int64_t kDay = 86'400 * kSecond;
  switch (unit) {
    case Unit::Second:
      return Nanos{kSecond};
    case Unit::Minute:
      return Nanos{60 * kSecond};
    case Unit::Hour:
      return Nanos{3'600 * kSecond};
    case Unit::Day:
      return Nanos{kDay};
    case Unit::Week:
      return Nanos{7 * kDay};
    case Unit::Month:
      return Nanos{30 * kDay};
    case Unit::Year:
      return Nanos{365 * kDay};
  }
  return Nanos{kSecond};
}

std::string_view to_string(Algorithm algorithm) noexcept {
  switch (algorithm) {
    case Algorithm::FixedWindow:
      return "fixed-window";
    case Algorithm::Gcra:
      return "gcra";
    case Algorithm::TokenBucket:
      return "token-bucket";
    case Algorithm::SlidingWindow:
      return "sliding-window";
  }
  return "?";
}

std::optional<Quota> RateLimit::quota() const {
  if (unlimited || requests_per_unit == 0) return std::nullopt;
  Result<Quota> q =
      Quota::make(length_of(unit), requests_per_unit, burst.value_or(requests_per_unit));
  FLOODGATE_CHECK(q, "a rate limit that did not pass validate()");
  return *q;
}

Result<void> validate(const RateLimit& limit) {
  if (limit.unlimited || limit.requests_per_unit == 0) return {};
  if (limit.burst && limit.algorithm != Algorithm::Gcra &&
      limit.algorithm != Algorithm::TokenBucket) {
    return Error("burst is for gcra and token-bucket only (the algorithm is " +
                 std::string(to_string(limit.algorithm)) + ")");
  }
  Result<Quota> q = Quota::make(length_of(limit.unit), limit.requests_per_unit,
                                limit.burst.value_or(limit.requests_per_unit));
  if (!q) return q.error();
  return {};
}

bool wildcard_match(std::string_view pattern, std::string_view value) noexcept {
  // Greedy with one backtrack point: the last '*' seen.
  std::size_t p = 0;
  std::size_t v = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.size() && pattern[p] == value[v]) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void Level::index(const std::vector<Descriptor>& rules) {
  by_key_.clear();
  for (const Descriptor& d : rules) {
    Rules& r = by_key_[d.key];
    if (!d.value) {
      r.any = &d;
    } else if (d.value->find('*') != std::string::npos) {
      r.wildcards.push_back(&d);
    } else {
      r.exact.emplace(*d.value, &d);
    }
  }
}

const Descriptor* Level::find(std::string_view key, std::string_view value) const {
  const auto rules = by_key_.find(key);
  if (rules == by_key_.end()) return nullptr;
  const Rules& r = rules->second;
  if (const auto exact = r.exact.find(value); exact != r.exact.end()) return exact->second;
  for (const Descriptor* d : r.wildcards) {
    if (wildcard_match(*d->value, value)) return d;
  }
  return r.any;
}

Result<Config> Config::parse(std::string_view text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error(file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  try {
    if (!root.IsMap()) return Error(file + ": must be a map with domain and descriptors");
    if (Result<void> ok = only_keys(file, root, "config", {"domain", "descriptors"}); !ok) {
      return ok.error();
    }
    const YAML::Node domain = root["domain"];
    if (!domain) return Error(file + ": no domain");
    Result<std::string> name = scalar(file, domain, "domain");
    if (!name) return name.error();
    if (name->empty()) return error_at(file, domain, "domain must not be empty");
    auto d = std::make_unique<Domain>();
    d->name = *name;
    d->file = file;
    std::string identity;
    append_part(identity, d->name);
    Result<std::vector<Descriptor>> descriptors =
        parse_descriptors(file, root["descriptors"], Parent{d->name, identity});
    if (!descriptors) return descriptors.error();
    d->descriptors = std::move(*descriptors);
    index_tree(d->descriptors);
    d->top.index(d->descriptors);
    Config config;
    config.domains_.emplace(d->name, std::move(d));
    return config;
  } catch (const YAML::Exception& e) {
    return Error(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<void> Config::add(Config&& other) {
  for (auto& [name, domain] : other.domains_) {
    if (const auto existing = domains_.find(name); existing != domains_.end()) {
      return Error(domain->file + ": domain " + internal::quoted(name) + " is already defined in " +
                   existing->second->file);
    }
    domains_.emplace(name, std::move(domain));
  }
  return {};
}

Result<Config> Config::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  std::vector<std::string> warnings;
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      std::error_code type_ec;
      const fs::file_status target = fs::status(e.path(), type_ec);
      if (fs::is_regular_file(target)) {
        files.push_back(e.path().string());
        continue;
      }
      // Named like a configuration file, but none can be read there: say so, read the rest.
      std::string what = "not a regular file";
      if (fs::is_symlink(fs::symlink_status(e.path(), type_ec)) && !fs::exists(target)) {
        what = "a symbolic link to nothing";
      } else if (fs::is_directory(target)) {
        what = "a directory";
      } else if (fs::is_fifo(target)) {
        what = "a FIFO";
      } else if (fs::is_socket(target)) {
        what = "a socket";
      } else if (fs::is_block_file(target) || fs::is_character_file(target)) {
        what = "a device";
      }
      warnings.push_back("config " + internal::quoted(e.path().string(), internal::kNameBytes) +
                         ": skipped, " + what);
    }
    if (ec) {
      return Error("config " + internal::quoted(path, internal::kNameBytes) +
                   ": cannot list: " + ec.message());
    }
    std::sort(files.begin(), files.end());
    std::sort(warnings.begin(), warnings.end());
    if (files.empty()) {
      return Error("config " + internal::quoted(path, internal::kNameBytes) +
                   ": no .yaml or .yml files in it" +
                   (warnings.empty() ? std::string() : " (" + warnings.front() + ")"));
    }
  } else {
    files.push_back(path);
  }
  Config config;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return Error("config " + internal::quoted(file, internal::kNameBytes) + ": cannot open");
    }
    std::stringstream text;
    text << in.rdbuf();
    Result<Config> one = parse(text.str(), file);
    if (!one) return one.error();
    if (Result<void> ok = config.add(std::move(*one)); !ok) return ok.error();
  }
  config.warnings_ = std::move(warnings);
  return config;
}

const Domain* Config::domain(std::string_view name) const {
  const auto found = domains_.find(name);
  return found == domains_.end() ? nullptr : found->second.get();
}

std::vector<std::string> Config::domain_names() const {
  std::vector<std::string> names;
  for (const auto& [name, domain] : domains_) names.push_back(name);
  return names;
}

const Descriptor* Config::match(std::string_view domain_name,
                                std::span<const Entry> entries) const {
  const Domain* d = domain(domain_name);
  if (d == nullptr || entries.empty()) return nullptr;
  const Level* level = &d->top;
  const Descriptor* found = nullptr;
  for (const Entry& e : entries) {
    found = level->find(e.key, e.value);
    if (found == nullptr) return nullptr;
    level = &found->children;
  }
  return found->rate_limit ? found : nullptr;
}

}  // namespace floodgate::server
