#include "floodgate/server/service_replay.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

#include "floodgate/core/internal/format.h"
#include "floodgate/replay/log_format.h"

namespace floodgate::server {

using internal::quoted;

Result<DescriptorTemplate> DescriptorTemplate::parse(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Error("descriptor " + quoted(text) + ": " + why);
  };
  DescriptorTemplate t;
  t.text_ = std::string(text);
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return bad(quoted(entry) + " is not key=value (e.g. remote_address=$client)");
    }
    TemplateEntry e;
    e.key = std::string(entry.substr(0, eq));
    const std::string_view value = entry.substr(eq + 1);
    std::string literal;
    for (std::size_t i = 0; i < value.size();) {
      if (value[i] != '$') {
        literal += value[i++];
        continue;
      }
      if (i + 1 < value.size() && value[i + 1] == '$') {
        literal += '$';
        i += 2;
        continue;
      }
      std::size_t k = i + 1;
      std::string_view name;
      if (k < value.size() && value[k] == '{') {
        const std::size_t close = value.find('}', k);
        if (close == std::string_view::npos) return bad("'${' without its '}'");
        name = value.substr(k + 1, close - k - 1);
        k = close + 1;
      } else {
        while (k < value.size() &&
               (std::isalnum(static_cast<unsigned char>(value[k])) != 0 || value[k] == '_')) {
          ++k;
        }
        name = value.substr(i + 1, k - i - 1);
      }
      if (name.empty()) return bad("a '$' names no field (a literal dollar is $$)");
      if (!literal.empty()) e.value.push_back({std::move(literal), "", 0});
      literal.clear();
      e.value.push_back({"", std::string(name), 0});
      i = k;
    }
    if (!literal.empty() || e.value.empty()) e.value.push_back({std::move(literal), "", 0});
    t.entries_.push_back(std::move(e));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return t;
}

namespace {

// Reports whether a line has a value for a descriptor: the field is present and not "-", what
// nginx and Envoy write for a value they do not have (a header that was not sent).
bool has_value(std::string_view value) { return replay::present(value) && value != "-"; }

}  // namespace

ServiceReplay::ServiceReplay(Options options) : options_(std::move(options)) {}

Result<ServiceReplay> ServiceReplay::create(Options options) {
  if (options.config == nullptr) return Error("no configuration");
  const Domain* domain = options.config->domain(options.domain);
  if (domain == nullptr) {
    std::string names;
    for (const std::string& name : options.config->domain_names()) {
      names += (names.empty() ? "" : ", ") + name;
    }
    return Error("domain " + quoted(options.domain) + ": the configuration has no such domain" +
                 (names.empty() ? "" : " (it has " + names + ")"));
  }
  if (options.descriptors.empty()) {
    return Error("no descriptors: give at least one, e.g. --descriptor 'remote_address=$client'");
  }
  for (const DescriptorTemplate& d : options.descriptors) {
    const std::string& first = d.entries_.front().key;
    const bool known = std::any_of(domain->descriptors.begin(), domain->descriptors.end(),
                                   [&](const Descriptor& rule) { return rule.key == first; });
    if (!known) {
      std::string keys;
      for (const Descriptor& rule : domain->descriptors) {
        if (keys.find("\"" + rule.key + "\"") == std::string::npos) {
          keys += (keys.empty() ? "" : ", ") + quoted(rule.key);
        }
      }
      return Error("descriptor " + quoted(d.text()) + ": no rule of domain " +
                   quoted(options.domain) + " starts with key " + quoted(first) +
                   " (its rules start with " + keys + ")");
    }
  }
  ServiceReplay replay(std::move(options));
  for (DescriptorTemplate& d : replay.options_.descriptors) {
    for (DescriptorTemplate::TemplateEntry& e : d.entries_) {
      for (DescriptorTemplate::Piece& p : e.value) {
        if (p.field_name.empty()) continue;
        const auto at = std::find(replay.fields_.begin(), replay.fields_.end(), p.field_name);
        p.field = static_cast<std::size_t>(at - replay.fields_.begin());
        if (at == replay.fields_.end()) replay.fields_.push_back(p.field_name);
      }
    }
  }
  ServiceOptions service;
  service.max_keys_per_rule = replay.options_.max_keys_per_rule;
  Result<std::unique_ptr<Service>> made = Service::create(replay.options_.config, service);
  if (!made) return made.error();
  replay.service_ = std::move(*made);
  replay.values_.resize(replay.options_.descriptors.size());
  for (std::size_t i = 0; i < replay.options_.descriptors.size(); ++i) {
    replay.values_[i].resize(replay.options_.descriptors[i].entries_.size());
  }
  return replay;
}

const Response& ServiceReplay::decide(Instant time, std::uint64_t hits,
                                      std::span<const std::string_view> values) {
  // The request: one descriptor per template whose fields the line has. Entries point into the
  // templates, the line (a value that is one field) or `values_` (one built of several pieces;
  // not resized from here on).
  std::size_t sent = 0;
  sent_.clear();
  for (std::size_t d = 0; d < options_.descriptors.size(); ++d) {
    const DescriptorTemplate& t = options_.descriptors[d];
    if (request_.descriptors.size() <= sent) request_.descriptors.emplace_back();
    RequestDescriptor& out = request_.descriptors[sent];
    out.entries.clear();
    bool complete = true;
    for (std::size_t e = 0; e < t.entries_.size() && complete; ++e) {
      const std::vector<DescriptorTemplate::Piece>& pieces = t.entries_[e].value;
      std::string_view value;
      if (pieces.size() == 1 && pieces[0].field_name.empty()) {
        value = pieces[0].literal;
      } else if (pieces.size() == 1) {
        value = values[pieces[0].field];  // The field itself: no copy.
        complete = has_value(value);
      } else {
        std::string& built = values_[d][e];
        built.clear();
        for (const DescriptorTemplate::Piece& p : pieces) {
          if (p.field_name.empty()) {
            built += p.literal;
            continue;
          }
          const std::string_view v = values[p.field];
          if (!has_value(v)) {
            complete = false;
            break;
          }
          built += v;
        }
        value = built;
      }
      out.entries.push_back(Entry{t.entries_[e].key, value});
    }
    sent_.push_back(complete);
    if (complete) ++sent;
  }
  request_.descriptors.resize(sent);
  request_.domain = options_.domain;  // Set here: a move of this replay moves the string.
  request_.hits_addend = static_cast<std::uint32_t>(hits);
  if (sent == 0) ++empty_requests_;
  response_ = service_->should_rate_limit(request_, time);
  for (std::size_t i = 0; i < response_.statuses.size(); ++i) {
    const DescriptorStatus& status = response_.statuses[i];
    if (status.rule == nullptr || !status.rule->rate_limit) continue;
    const auto found = std::find_if(rules_.begin(), rules_.end(),
                                    [&](const auto& r) { return r->rule == status.rule; });
    RuleReplay* rule = found != rules_.end() ? found->get() : nullptr;
    if (rule == nullptr) {
      rules_.push_back(std::make_unique<RuleReplay>());
      rule = rules_.back().get();
      rule->rule = status.rule;
      if (options_.series) rule->series = replay::TimeSeries(options_.bar);
    }
    ++rule->hits;
    const bool over = status.code == Code::OverLimit && !status.shadowed;
    rule->over += over ? 1u : 0u;
    rule->shadowed += status.shadowed ? 1u : 0u;
    if (options_.series) rule->series.add(time, !over);
    if (over || status.shadowed) {
      scratch_.clear();
      for (const Entry& entry : request_.descriptors[i].entries) {
        if (!scratch_.empty()) scratch_ += ',';
        scratch_.append(entry.key).append("=").append(entry.value);
      }
      rule->limited.add(scratch_);
    }
  }
  return response_;
}

std::string ServiceReplay::statuses() const {
  std::string out;
  for (std::size_t d = 0, i = 0; d < sent_.size(); ++d) {
    if (d > 0) out += ';';
    if (!sent_[d]) {
      out += '-';
      continue;
    }
    const DescriptorStatus& status = response_.statuses[i++];
    out += status.shadowed ? "shadow" : status.code == Code::OverLimit ? "over" : "ok";
  }
  return out;
}

std::vector<const RuleReplay*> ServiceReplay::rules() const {
  std::vector<const RuleReplay*> out;
  for (const auto& rule : rules_) out.push_back(rule.get());
  std::sort(out.begin(), out.end(), [](const RuleReplay* a, const RuleReplay* b) {
    return std::tie(a->rule->file, a->rule->line, a->rule->identity) <
           std::tie(b->rule->file, b->rule->line, b->rule->identity);
  });
  return out;
}

}  // namespace floodgate::server
