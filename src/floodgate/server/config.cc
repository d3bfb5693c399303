#include "floodgate/server/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/format.h"
#include "floodgate/server/internal/yaml_document.h"

namespace floodgate::server {
namespace {

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

using internal::YamlDocument;
using Kind = YamlDocument::Kind;
constexpr std::uint32_t kNone = YamlDocument::kNone;

// One file being read: its document, its name for messages, and the rules read so far over the
// whole configuration.
struct Reader {
  const YamlDocument& doc;
  const std::string& file;
  std::size_t& rules;
  // Null: the first error ends the reading. Otherwise a descriptor with an error is recorded here
  // and skipped, and its siblings are read on.
  std::vector<Error>* errors = nullptr;

  std::string where(std::uint32_t node) const {
    return file + ":" + std::to_string(doc.line(node));
  }

  Error error_at(std::uint32_t node, const std::string& message) const {
    return Error(where(node) + ": " + message);
  }

  Result<std::string> scalar(std::uint32_t node, std::string_view key) const {
    if (doc.kind(node) != Kind::Scalar) {
      return error_at(node, std::string(key) + " must be a single value");
    }
    return std::string(doc.text(node));
  }

  Result<bool> boolean(std::uint32_t node, std::string_view key) const {
    Result<std::string> text = scalar(node, key);
    if (!text) return text.error();
    if (*text == "true" || *text == "True" || *text == "TRUE") return true;
    if (*text == "false" || *text == "False" || *text == "FALSE") return false;
    return error_at(
        node, std::string(key) + " must be true or false (got " + internal::quoted(*text) + ")");
  }

  Result<std::uint64_t> whole_number(std::uint32_t node, std::string_view key,
                                     std::uint64_t max) const {
    Result<std::string> text = scalar(node, key);
    if (!text) return text.error();
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (text->empty() || ec != std::errc() || end != text->data() + text->size() || n > max) {
      return error_at(node, std::string(key) + " must be a whole number from 0 to " +
                                std::to_string(max) + " (got " + internal::quoted(*text) + ")");
    }
    return n;
  }

  // Rejects keys of `node` (a map) outside `known`, naming the first one.
  Result<void> only_keys(std::uint32_t node, std::string_view what,
                         std::initializer_list<std::string_view> known) const {
    for (std::uint32_t k = doc.first(node); k != kNone; k = doc.next(doc.next(k))) {
      if (doc.kind(k) != Kind::Scalar) {
        return error_at(k, std::string(what) + ": a key must be a single value");
      }
      const std::string_view key = doc.text(k);
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string list;
      for (const std::string_view known_key : known) {
        list += (list.empty() ? "" : ", ") + std::string(known_key);
      }
      return error_at(k, std::string(what) + ": unknown key " + internal::quoted(key) +
                             " (known: " + list + ")");
    }
    return {};
  }

  Result<Unit> parse_unit(std::uint32_t node) const {
    Result<std::string> text = scalar(node, "unit");
    if (!text) return text.error();
    std::string lower = *text;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const Unit u :
         {Unit::Second, Unit::Minute, Unit::Hour, Unit::Day, Unit::Week, Unit::Month, Unit::Year}) {
      if (lower == to_string(u)) return u;
    }
    return error_at(node, "unit must be second, minute, hour, day, week, month or year (got " +
                              internal::quoted(*text) + ")");
  }

  Result<Algorithm> parse_algorithm(std::uint32_t node) const {
    Result<std::string> text = scalar(node, "algorithm");
    if (!text) return text.error();
    Result<Algorithm> algorithm = floodgate::parse_algorithm(*text);
    if (!algorithm) return error_at(node, algorithm.error().message());
    return *algorithm;
  }

  Result<RateLimit> parse_rate_limit(std::uint32_t node) const {
    if (doc.kind(node) != Kind::Map) return error_at(node, "rate_limit must be a map");
    if (Result<void> ok = only_keys(
            node, "rate_limit",
            {"unit", "requests_per_unit", "name", "unlimited", "replaces", "algorithm", "burst"});
        !ok) {
      return ok.error();
    }
    RateLimit r;
    if (const std::uint32_t n = doc.find(node, "unlimited"); n != kNone) {
      Result<bool> b = boolean(n, "unlimited");
      if (!b) return b.error();
      r.unlimited = *b;
    }
    if (const std::uint32_t n = doc.find(node, "name"); n != kNone) {
      Result<std::string> name = scalar(n, "name");
      if (!name) return name.error();
      r.name = *name;
    }
    const std::uint32_t replaces = doc.find(node, "replaces");
    if (replaces != kNone) {
      if (doc.kind(replaces) != Kind::Seq) {
        return error_at(replaces, "replaces must be a list of {name: ...}");
      }
      for (std::uint32_t item = doc.first(replaces); item != kNone; item = doc.next(item)) {
        const std::uint32_t name = doc.find(item, "name");
        if (name == kNone) return error_at(item, "replaces must be a list of {name: ...}");
        if (Result<void> ok = only_keys(item, "replaces", {"name"}); !ok) return ok.error();
        Result<std::string> text = scalar(name, "name");
        if (!text) return text.error();
        r.replaces.push_back(*text);
      }
    }
    if (r.unlimited) {
      for (const char* k : {"unit", "requests_per_unit", "algorithm", "burst"}) {
        if (const std::uint32_t n = doc.find(node, k); n != kNone) {
          return error_at(n, std::string("an unlimited rate_limit must not set ") + k);
        }
      }
      return r;
    }
    const std::uint32_t unit = doc.find(node, "unit");
    if (unit == kNone) return error_at(node, "rate_limit needs a unit (or unlimited: true)");
    Result<Unit> u = parse_unit(unit);
    if (!u) return u.error();
    r.unit = *u;
    const std::uint32_t count = doc.find(node, "requests_per_unit");
    if (count == kNone) return error_at(node, "rate_limit needs requests_per_unit");
    Result<std::uint64_t> n =
        whole_number(count, "requests_per_unit", std::numeric_limits<std::uint32_t>::max());
    if (!n) return n.error();
    r.requests_per_unit = static_cast<std::uint32_t>(*n);
    if (const std::uint32_t a = doc.find(node, "algorithm"); a != kNone) {
      Result<Algorithm> algorithm = parse_algorithm(a);
      if (!algorithm) return algorithm.error();
      r.algorithm = *algorithm;
    }
    if (const std::uint32_t b = doc.find(node, "burst"); b != kNone) {
      if (!has_burst(r.algorithm)) {
        return error_at(b,
                        "burst is for gcra and token-bucket only (this rate_limit's algorithm is " +
                            std::string(to_string(r.algorithm)) + ")");
      }
      Result<std::uint64_t> burst =
          whole_number(b, "burst", std::numeric_limits<std::uint32_t>::max());
      if (!burst) return burst.error();
      r.burst = *burst;
    }
    if (!r.name.empty() &&
        std::find(r.replaces.begin(), r.replaces.end(), r.name) != r.replaces.end()) {
      return error_at(replaces, "rate_limit " + internal::quoted(r.name) +
                                    " replaces itself: it would never apply (remove its name "
                                    "from replaces)");
    }
    if (Result<void> ok = validate(r); !ok) return error_at(node, ok.error().message());
    return r;
  }

  // Reads `node` (any YAML) as metadata, as YAML's core schema types its scalars.
  MetadataValue metadata(std::uint32_t node) const {
    MetadataValue v;
    switch (doc.kind(node)) {
      case Kind::Null:
        return v;
      case Kind::Scalar: {
        const std::string_view text = doc.text(node);
        v.kind = MetadataValue::Kind::String;
        v.string = std::string(text);
        if (!doc.plain(node)) return v;
        for (const auto& [word, b] :
             {std::pair{"true", true}, std::pair{"True", true}, std::pair{"TRUE", true},
              std::pair{"false", false}, std::pair{"False", false}, std::pair{"FALSE", false}}) {
          if (text == word) {
            v.kind = MetadataValue::Kind::Bool;
            v.boolean = b;
            return v;
          }
        }
        double number = 0;
        const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
        const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), number);
        if (!text.empty() && ec == std::errc() && end == text.data() + text.size() &&
            std::isfinite(number)) {
          v.kind = MetadataValue::Kind::Number;
          v.number = number;
        }
        return v;
      }
      case Kind::Seq:
        v.kind = MetadataValue::Kind::List;
        for (std::uint32_t item = doc.first(node); item != kNone; item = doc.next(item)) {
          v.items.push_back(metadata(item));
        }
        return v;
      case Kind::Map:
        v.kind = MetadataValue::Kind::Map;
        for (std::uint32_t k = doc.first(node); k != kNone; k = doc.next(doc.next(k))) {
          v.keys.emplace_back(doc.kind(k) == Kind::Scalar ? doc.text(k) : std::string_view());
          v.items.push_back(metadata(doc.next(k)));
        }
        return v;
    }
    return v;
  }

  Result<std::vector<Descriptor>> parse_descriptors(std::uint32_t node, const Parent& parent) const;
  Result<Descriptor> parse_descriptor(std::uint32_t node, const Parent& parent) const;
};

Result<std::vector<Descriptor>> Reader::parse_descriptors(std::uint32_t node,
                                                          const Parent& parent) const {
  std::vector<Descriptor> out;
  if (node == kNone || doc.kind(node) == Kind::Null) return out;
  if (doc.kind(node) != Kind::Seq) return error_at(node, "descriptors must be a list");
  for (std::uint32_t item = doc.first(node); item != kNone; item = doc.next(item)) {
    Result<Descriptor> d = parse_descriptor(item, parent);
    if (!d && errors == nullptr) return d.error();
    if (!d) {
      errors->push_back(d.error());
      continue;
    }
    out.push_back(std::move(*d));
  }
  return out;
}

Result<Descriptor> Reader::parse_descriptor(std::uint32_t node, const Parent& parent) const {
  if (doc.kind(node) != Kind::Map) return error_at(node, "a descriptor must be a map with a key");
  if (++rules > kMaxRules) {
    return error_at(node,
                    "more than " + std::to_string(kMaxRules) + " descriptors in the configuration");
  }
  if (Result<void> ok =
          only_keys(node, "descriptor",
                    {"key", "value", "rate_limit", "descriptors", "shadow_mode", "quota_mode",
                     "detailed_metric", "value_to_metric", "share_threshold", "metadata"});
      !ok) {
    return ok.error();
  }
  Descriptor d;
  d.file = file;
  d.line = static_cast<int>(doc.line(node));
  const std::uint32_t key = doc.find(node, "key");
  if (key == kNone) return error_at(node, "a descriptor needs a key");
  Result<std::string> k = scalar(key, "key");
  if (!k) return k.error();
  if (k->empty()) return error_at(key, "a descriptor's key must not be empty");
  d.key = std::move(*k);
  if (const std::uint32_t value = doc.find(node, "value"); value != kNone) {
    Result<std::string> v = scalar(value, "value");
    if (!v) return v.error();
    d.value = std::move(*v);
  }
  d.id = parent.id + "." + d.key + (d.value ? "_" + *d.value : "");
  d.identity = parent.identity + "/";
  append_part(d.identity, d.key);
  if (d.value) {
    d.identity += '=';
    append_part(d.identity, *d.value);
  }
  if (const std::uint32_t r = doc.find(node, "rate_limit"); r != kNone) {
    Result<RateLimit> rate = parse_rate_limit(r);
    if (!rate) return rate.error();
    d.rate_limit = std::move(*rate);
  }
  for (const auto& [name, field] :
       {std::pair{"shadow_mode", &d.shadow_mode}, std::pair{"quota_mode", &d.quota_mode},
        std::pair{"detailed_metric", &d.detailed_metric},
        std::pair{"value_to_metric", &d.value_to_metric},
        std::pair{"share_threshold", &d.share_threshold}}) {
    if (const std::uint32_t n = doc.find(node, name); n != kNone) {
      Result<bool> b = boolean(n, name);
      if (!b) return b.error();
      *field = *b;
    }
  }
  if (d.share_threshold && (!d.value || d.value->find('*') == std::string::npos)) {
    return error_at(doc.find(node, "share_threshold"),
                    "share_threshold is for a value with a wildcard '*' (descriptor " +
                        internal::quoted(d.id) + " has " +
                        (d.value ? "value " + internal::quoted(*d.value) : std::string("none")) +
                        ")");
  }
  if (const std::uint32_t m = doc.find(node, "metadata"); m != kNone) {
    if (doc.kind(m) != Kind::Map) {
      return error_at(m, "metadata must be a map (what Envoy receives as dynamic metadata)");
    }
    d.metadata = metadata(m);
  }
  Result<std::vector<Descriptor>> children =
      parse_descriptors(doc.find(node, "descriptors"), Parent{d.id, d.identity});
  if (!children) return children.error();
  d.descriptors = std::move(*children);
  return d;
}

// Returns `hash` (FNV-1a 64) continued over `bytes`.
std::uint64_t fnv1a(std::uint64_t hash, std::string_view bytes) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3;
  }
  return hash;
}

// Returns the error for two siblings with one key and value, if `repeated` names them.
Result<void> unique(std::pair<const Descriptor*, const Descriptor*> repeated) {
  if (repeated.first == nullptr) return {};
  const Descriptor& d = *repeated.first;
  const Descriptor& first = *repeated.second;
  return Error(d.file + ":" + std::to_string(d.line) + ": duplicate descriptor composite key " +
               internal::quoted(d.id) + " (first at " +
               (first.file == d.file ? "line " : first.file + ":") + std::to_string(first.line) +
               ")");
}

// Builds every level's index below `level`, once the tree no longer changes; returns the first
// pair of siblings with one key and value.
Result<void> index_tree(std::vector<Descriptor>& level, const Descriptor* parent = nullptr) {
  for (Descriptor& d : level) {
    d.parent = parent;
    d.shares_values = d.share_threshold || (parent != nullptr && parent->shares_values);
    d.keyed_stats = d.detailed_metric;
    for (const Descriptor* p = &d; p != nullptr && !d.keyed_stats; p = p->parent) {
      d.keyed_stats = p->value_to_metric;
    }
    if (Result<void> ok = index_tree(d.descriptors, &d); !ok) return ok;
    if (Result<void> ok = unique(d.children.index(d.descriptors)); !ok) return ok;
  }
  return {};
}

}  // namespace

std::optional<Quota> RateLimit::quota() const {
  if (unlimited || requests_per_unit == 0) return std::nullopt;
  Result<Quota> q =
      Quota::make(length_of(unit), requests_per_unit, burst.value_or(requests_per_unit));
  FLOODGATE_CHECK(q, "a rate limit that did not pass validate()");
  return *q;
}

Result<void> validate(const RateLimit& limit) {
  if (limit.unlimited || limit.requests_per_unit == 0) return {};
  if (limit.burst && !has_burst(limit.algorithm)) {
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

std::pair<const Descriptor*, const Descriptor*> Level::index(const std::vector<Descriptor>& rules) {
  by_key_.clear();
  // Wildcard values by identity, to find repeated ones without comparing every pair.
  std::unordered_map<std::string_view, const Descriptor*, Hash> wildcards;
  std::pair<const Descriptor*, const Descriptor*> repeated{nullptr, nullptr};
  const auto repeats = [&](const Descriptor& d, const Descriptor* earlier) {
    if (repeated.first == nullptr) repeated = {&d, earlier};
  };
  // Sized first: a level of a million exact values is built without rehashing.
  std::unordered_map<std::string_view, std::size_t, Hash> exact_values;
  for (const Descriptor& d : rules) {
    if (d.value && d.value->find('*') == std::string::npos) ++exact_values[d.key];
  }
  for (const auto& [key, n] : exact_values) by_key_[key].exact.reserve(n);
  for (const Descriptor& d : rules) {
    Rules& r = by_key_[d.key];
    if (!d.value) {
      if (r.any != nullptr) repeats(d, r.any);
      r.any = &d;
    } else if (d.value->find('*') != std::string::npos) {
      if (const auto [at, added] = wildcards.emplace(d.identity, &d); !added) {
        repeats(d, at->second);
        continue;
      }
      r.wildcards.push_back(&d);
    } else if (const auto [at, added] = r.exact.emplace(*d.value, &d); !added) {
      repeats(d, at->second);
    }
  }
  return repeated;
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
  std::size_t rules = 0;
  return parse(text, file, rules);
}

Result<Config> Config::parse(std::string_view text, const std::string& file, std::size_t& rules) {
  return parse(text, file, rules, nullptr);
}

Result<Config> Config::parse(std::string_view text, const std::string& file, std::size_t& rules,
                             std::vector<Error>* errors) {
  Result<YamlDocument> doc = YamlDocument::parse(text, file);
  if (!doc) return doc.error();
  const Reader reader{*doc, file, rules, errors};
  const std::uint32_t root = doc->root();
  if (doc->kind(root) != Kind::Map) {
    return Error(file + ": must be a map with domain and descriptors");
  }
  if (Result<void> ok = reader.only_keys(root, "config", {"domain", "descriptors"}); !ok) {
    return ok.error();
  }
  const std::uint32_t domain = doc->find(root, "domain");
  if (domain == kNone) return Error(file + ": no domain");
  Result<std::string> name = reader.scalar(domain, "domain");
  if (!name) return name.error();
  if (name->empty()) return reader.error_at(domain, "domain must not be empty");
  auto d = std::make_unique<Domain>();
  d->name = *name;
  d->file = file;
  std::string identity;
  append_part(identity, d->name);
  Result<std::vector<Descriptor>> descriptors =
      reader.parse_descriptors(doc->find(root, "descriptors"), Parent{d->name, identity});
  if (!descriptors) return descriptors.error();
  if (errors != nullptr && !errors->empty()) {
    Error first = errors->front();
    errors->erase(errors->begin());
    return first;
  }
  d->descriptors = std::move(*descriptors);
  if (Result<void> ok = unique(d->top.index(d->descriptors)); !ok) return ok.error();
  if (Result<void> ok = index_tree(d->descriptors); !ok) return ok.error();
  Config config;
  config.files_.push_back(file);
  config.hash_ = fnv1a(fnv1a(fnv1a(fnv1a(config.hash_, file), std::string_view("\0", 1)), text),
                       std::string_view("\0", 1));
  config.file_hashes_[file] = config.hash_;
  for_each_descriptor(d->descriptors, [&config](const Descriptor& rule) {
    config.rules_ += rule.rate_limit ? 1u : 0u;
  });
  config.domains_.emplace(d->name, std::move(d));
  return config;
}

Result<void> Config::add(Config&& other, bool merge_domains) {
  // Both hashes, in order: the files of `other` after these.
  const std::uint64_t theirs = other.hash_;
  hash_ = fnv1a(hash_, std::string_view(reinterpret_cast<const char*>(&theirs), sizeof theirs));
  files_.insert(files_.end(), other.files_.begin(), other.files_.end());
  file_hashes_.insert(other.file_hashes_.begin(), other.file_hashes_.end());
  rules_ += other.rules_;
  for (auto& [name, domain] : other.domains_) {
    const auto existing = domains_.find(name);
    if (existing == domains_.end()) {
      domains_.emplace(name, std::move(domain));
      continue;
    }
    if (!merge_domains) {
      return Error(domain->file + ": domain " + internal::quoted(name) + " is already defined in " +
                   existing->second->file + " (--merge-domains merges them)");
    }
    Domain& into = *existing->second;
    for (Descriptor& d : domain->descriptors) into.descriptors.push_back(std::move(d));
    // The descriptors moved: every index and parent is built again.
    if (Result<void> ok = unique(into.top.index(into.descriptors)); !ok) return ok;
    if (Result<void> ok = index_tree(into.descriptors); !ok) return ok;
  }
  return {};
}

namespace {

// Lists the configuration files of `path`: the file itself, or a directory's *.yaml and *.yml
// files in name order, with a warning for each entry so named that is not a file.
Result<void> list_files(const std::string& path, std::vector<std::string>& files,
                        std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  std::error_code ec;
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
        what = "a symbolic link that leads to no file (dangling, or a loop)";
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
  return {};
}

}  // namespace

Result<void> Config::read_files(const std::vector<std::string>& files, bool merge_domains,
                                std::size_t& rules, std::vector<std::string>* errors) {
  // Without `errors`, the first error is returned; with it, each is added there and reading goes
  // on.
  const auto failed = [errors](const Error& e) {
    if (errors != nullptr) errors->push_back(e.message());
    return errors == nullptr;
  };
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      const Error e("config " + internal::quoted(file, internal::kNameBytes) + ": cannot open");
      if (failed(e)) return e;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    std::vector<Error> more;
    Result<Config> one = parse(text.str(), file, rules, errors != nullptr ? &more : nullptr);
    if (!one && failed(one.error())) return one.error();
    for (const Error& e : more) failed(e);
    if (!one) continue;
    if (Result<void> ok = add(std::move(*one), merge_domains); !ok && failed(ok.error())) {
      return ok.error();
    }
  }
  return {};
}

Result<Config> Config::load(const std::string& path, bool merge_domains) {
  std::vector<std::string> files;
  std::vector<std::string> warnings;
  if (Result<void> listed = list_files(path, files, warnings); !listed) return listed.error();
  Config config;
  std::size_t rules = 0;
  if (Result<void> read = config.read_files(files, merge_domains, rules, nullptr); !read) {
    return read.error();
  }
  config.warnings_ = std::move(warnings);
  return config;
}

ConfigCheck Config::check(const std::string& path, bool merge_domains) {
  ConfigCheck out;
  if (Result<void> listed = list_files(path, out.files, out.warnings); !listed) {
    out.errors.push_back(listed.error().message());
    return out;
  }
  Config config;
  (void)config.read_files(out.files, merge_domains, out.rules, &out.errors);
  out.domains = config.domains_.size();
  return out;
}

namespace {

// Returns the levels from the top of the tree down to `rule`.
std::vector<const Descriptor*> path_to(const Descriptor& rule) {
  std::vector<const Descriptor*> path;
  for (const Descriptor* d = &rule; d != nullptr; d = d->parent) path.push_back(d);
  std::reverse(path.begin(), path.end());
  return path;
}

bool has_wildcard(const Descriptor& d) {
  return d.value && d.value->find('*') != std::string::npos;
}

}  // namespace

namespace {

// Returns the definition of `d`, which has a rate limit, as `Config::dump` writes it after the id.
std::string definition_text(const Descriptor& d) {
  const RateLimit& r = *d.rate_limit;
  std::string unit(r.unlimited ? "unknown" : to_string(r.unit));
  for (char& c : unit) c = static_cast<char>(c - 'a' + 'A');
  std::string out = "unit=" + unit +
                    " requests_per_unit=" + std::to_string(r.unlimited ? 0 : r.requests_per_unit) +
                    ", shadow_mode: " + (d.shadow_mode ? "true" : "false") +
                    ", quota_mode: " + (d.quota_mode ? "true" : "false");
  if (r.unlimited) out += ", unlimited: true";
  if (!r.unlimited && r.algorithm != Algorithm::EnvoyFixedWindow) {
    out += ", algorithm: " + std::string(to_string(r.algorithm));
  }
  if (r.burst) out += ", burst: " + std::to_string(*r.burst);
  if (!r.name.empty()) out += ", name: " + r.name;
  for (std::size_t i = 0; i < r.replaces.size(); ++i) {
    out += (i == 0 ? ", replaces: " : ",") + r.replaces[i];
  }
  return out;
}

// Returns every rule of `config` by identity: its id and definition.
std::map<std::string, std::pair<std::string, std::string>> rules_of(const Config& config) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const std::string& name : config.domain_names()) {
    for_each_descriptor(config.domain(name)->descriptors, [&out](const Descriptor& d) {
      if (d.rate_limit) out[d.identity] = {d.id, definition_text(d)};
    });
  }
  return out;
}

// Returns the words (split at spaces, and at ", ") of `a` and `b` that differ, "a -> b".
std::string difference(const std::string& a, const std::string& b) {
  const auto words = [](std::string text) {
    for (std::size_t at; (at = text.find(", ")) != std::string::npos;) text.replace(at, 2, " ");
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  // "shadow_mode:" and its value are one field.
  const auto fields = [&words](const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& w : words(text)) {
      if (!out.empty() && out.back().ends_with(":")) {
        out.back() += " " + w;
      } else {
        out.push_back(w);
      }
    }
    return out;
  };
  const std::vector<std::string> x = fields(a);
  const std::vector<std::string> y = fields(b);
  std::string from;
  std::string to;
  for (const std::string& w : x) {
    if (std::find(y.begin(), y.end(), w) == y.end()) from += (from.empty() ? "" : " ") + w;
  }
  for (const std::string& w : y) {
    if (std::find(x.begin(), x.end(), w) == x.end()) to += (to.empty() ? "" : " ") + w;
  }
  return (from.empty() ? "(none)" : from) + " -> " + (to.empty() ? "(none)" : to);
}

// Appends ", " or `head`, then `names` (at most 10, then how many more).
void append_names(std::string& out, const std::string& head,
                  const std::vector<std::string>& names) {
  if (names.empty()) return;
  out += (out.empty() ? "" : "; ") + head + " " + std::to_string(names.size()) + " (";
  for (std::size_t i = 0; i < names.size() && i < 10; ++i) out += (i == 0 ? "" : ", ") + names[i];
  if (names.size() > 10) out += ", and " + std::to_string(names.size() - 10) + " more";
  out += ")";
}

}  // namespace

std::string Config::dump() const {
  std::string out;
  for (const auto& [name, domain] : domains_) {
    for_each_descriptor(domain->descriptors, [&out](const Descriptor& d) {
      if (d.rate_limit) out += d.id + ": " + definition_text(d) + "\n";
    });
  }
  return out;
}

std::string describe_loaded(const Config& config) {
  const auto list = [](std::size_t n, const char* one, const char* many,
                       const std::vector<std::string>& names) {
    std::string out = std::to_string(n) + " " + (n == 1 ? one : many) + " (";
    for (std::size_t i = 0; i < names.size() && i < 10; ++i) {
      out += (i == 0 ? "" : ", ") + names[i];
    }
    if (names.size() > 10) out += ", and " + std::to_string(names.size() - 10) + " more";
    return out + ")";
  };
  const std::vector<std::string> domains = config.domain_names();
  return list(config.files().size(), "file", "files", config.files()) + ", " +
         list(domains.size(), "domain", "domains", domains) + ", " +
         std::to_string(config.rules()) + (config.rules() == 1 ? " rule" : " rules");
}

std::string describe_change(const Config& before, const Config& after, std::size_t max_rules) {
  std::string out;
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> changed;
  const auto& was = before.file_hashes();
  const auto& now = after.file_hashes();
  for (const auto& [file, hash] : now) {
    const auto old = was.find(file);
    if (old == was.end()) {
      added.push_back(file);
    } else if (old->second != hash) {
      changed.push_back(file);
    }
  }
  for (const auto& [file, hash] : was) {
    if (!now.contains(file)) removed.push_back(file);
  }
  append_names(out, "files added", added);
  append_names(out, "files removed", removed);
  append_names(out, "files changed", changed);
  if (before.rules() > max_rules || after.rules() > max_rules) {
    return out + (out.empty() ? "" : "; ") + "rules: " + std::to_string(before.rules()) +
           " before, " + std::to_string(after.rules()) + " now (more than " +
           std::to_string(max_rules) + ": not compared one by one)";
  }
  added.clear();
  removed.clear();
  changed.clear();
  const auto old_rules = rules_of(before);
  const auto new_rules = rules_of(after);
  for (const auto& [identity, rule] : new_rules) {
    const auto old = old_rules.find(identity);
    if (old == old_rules.end()) {
      added.push_back(rule.first);
    } else if (old->second.second != rule.second) {
      changed.push_back(rule.first + ": " + difference(old->second.second, rule.second));
    }
  }
  for (const auto& [identity, rule] : old_rules) {
    if (!new_rules.contains(identity)) removed.push_back(rule.first);
  }
  append_names(out, "rules added", added);
  append_names(out, "rules removed", removed);
  append_names(out, "rules changed", changed);
  return out.empty() ? "nothing changed" : out;
}

std::string Config::state_key(const Descriptor& rule, std::span<const Entry> entries) {
  std::string key;
  const auto append = [&key](std::string_view value) {
    key += std::to_string(value.size());
    key += ':';
    key += value;
  };
  if (!rule.shares_values) {
    for (const Entry& e : entries) append(e.value);
    return key;
  }
  const std::vector<const Descriptor*> path = path_to(rule);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Descriptor* level = i < path.size() ? path[i] : nullptr;
    // The wildcard stands for every value it matches (a value the level names exactly is never
    // matched by it: `match` prefers the exact one).
    if (level != nullptr && level->share_threshold && has_wildcard(*level)) {
      key += '*';  // Apart from any value: a value is never written with this prefix.
      append(*level->value);
    } else {
      append(entries[i].value);
    }
  }
  return key;
}

std::string Config::envoy_key(std::string_view domain, const Descriptor* rule,
                              std::span<const Entry> entries) {
  std::vector<const Descriptor*> path;
  if (rule != nullptr && rule->shares_values) path = path_to(*rule);
  std::string key(domain);
  key += '_';
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Descriptor* level = i < path.size() ? path[i] : nullptr;
    key += entries[i].key;
    key += '_';
    key += level != nullptr && level->share_threshold && has_wildcard(*level)
               ? std::string_view(*level->value)
               : entries[i].value;
    key += '_';
  }
  return key;
}

std::string Config::stats_key(std::string_view domain, const Descriptor& rule,
                              std::span<const Entry> entries) {
  const std::vector<const Descriptor*> path = path_to(rule);
  std::string key(domain);
  const bool shared = rule.shares_values;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const Descriptor* level = i < path.size() ? path[i] : nullptr;
    const bool wildcard = level != nullptr && has_wildcard(*level);
    std::string_view value;
    if (level != nullptr && level->share_threshold && wildcard) {
      value = *level->value;
    } else if (rule.detailed_metric) {
      value = e.value;
    } else if (level == nullptr) {
      value = {};
    } else if (wildcard) {
      value = level->value_to_metric ? e.value : std::string_view(*level->value);
    } else if (level->value) {
      value = e.value;  // Matched exactly.
    } else if (level->value_to_metric) {
      value = e.value;
    }
    key += '.';
    key += e.key;
    // envoyproxy/ratelimit's detailed name writes "key_" for an empty value unless a level shares
    // its values.
    if (!value.empty() || (rule.detailed_metric && !shared)) {
      key += '_';
      key += value;
    }
  }
  return key;
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
  return d == nullptr ? nullptr : match(*d, entries);
}

const Descriptor* Config::match(const Domain& d, std::span<const Entry> entries) {
  if (entries.empty()) return nullptr;
  const Level* level = &d.top;
  const Descriptor* found = nullptr;
  for (const Entry& e : entries) {
    found = level->find(e.key, e.value);
    if (found == nullptr) return nullptr;
    level = &found->children;
  }
  return found->rate_limit ? found : nullptr;
}

}  // namespace floodgate::server
