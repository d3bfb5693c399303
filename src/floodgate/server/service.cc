#include "floodgate/server/service.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/time_math.h"

namespace floodgate::server {
namespace {

constexpr std::uint32_t kUnlimitedRemaining = std::numeric_limits<std::uint32_t>::max();

// Returns the time until the end of the aligned window of `unit` that holds `now`.
Nanos until_window_end(Unit unit, Instant now) {
  const std::int64_t period = length_of(unit).count();
  const std::int64_t t = internal::clamped_nanos(now);
  return Nanos{internal::floor_div(t, period) * period + period - t};
}

// Returns envoyproxy/ratelimit's `duration_until_reset`: whole seconds from `now`'s second to the
// end of its window of `unit`, from 1 to the unit's length in seconds.
Nanos envoy_reset(Unit unit, Instant now) {
  const std::int64_t period = length_of(unit).count() / 1'000'000'000;
  const std::int64_t second = internal::floor_div(internal::clamped_nanos(now), 1'000'000'000);
  return std::chrono::seconds(period - (second - internal::floor_div(second, period) * period));
}

}  // namespace

std::string override_key(std::string_view domain, Unit unit, std::span<const Entry> entries) {
  std::string key(1, static_cast<char>('0' + static_cast<int>(unit)));
  key += '|';
  key += std::to_string(domain.size());
  key += ':';
  key += domain;
  for (const Entry& e : entries) {
    for (const std::string_view part : {e.key, e.value}) {
      key += std::to_string(part.size());
      key += ':';
      key += part;
    }
  }
  return key;
}

std::string definition_of(const Descriptor& rule) {
  const RateLimit& r = *rule.rate_limit;
  return rule.identity + "|" + std::string(to_string(r.algorithm)) + "|" +
         std::string(to_string(r.unit)) + "|" + std::to_string(r.requests_per_unit) + "|" +
         (r.burst ? std::to_string(*r.burst) : std::string("-"));
}

namespace {

// Returns `limit` as the rate limit (envoyproxy/ratelimit's fixed window) it stands for,
// unvalidated.
RateLimit fixed_window_of(const LimitOverride& limit) {
  RateLimit r;
  r.unit = limit.unit;
  r.requests_per_unit = limit.requests_per_unit;
  return r;
}

}  // namespace

Result<RateLimit> rate_limit_of(const LimitOverride& limit) {
  RateLimit r = fixed_window_of(limit);
  if (Result<void> ok = validate(r); !ok) return ok.error();
  return r;
}

Service::Service(ServiceOptions options)
    : options_(std::move(options)),
      backend_(options_.backend != nullptr ? options_.backend
                                           : make_local_backend(options_.max_keys_per_rule)) {}

Result<std::unique_ptr<Service>> Service::create(std::shared_ptr<const Config> config,
                                                 ServiceOptions options) {
  std::unique_ptr<Service> service(new Service(std::move(options)));
  Result<std::shared_ptr<const Snapshot>> first = service->build(std::move(config), nullptr);
  if (!first) return first.error();
  service->snapshot_ = std::move(*first);
  return service;
}

Result<std::shared_ptr<const Service::Snapshot>> Service::build(
    std::shared_ptr<const Config> config, const Snapshot* previous) const {
  std::unordered_map<std::string, std::shared_ptr<RuleState>> kept;
  std::unordered_map<std::string, Counted> kept_counters;
  std::unordered_map<std::string, Counted> kept_overrides;
  if (previous != nullptr) {
    for (const auto& [rule, state] : previous->states) kept.emplace(definition_of(*rule), state);
    for (const auto& [rule, c] : previous->counters) kept_counters.emplace(rule->identity, c);
    kept_overrides = previous->override_counters;
  }
  // Rules whose id another rule has: labelled by identity in metrics. Found by sorting the ids'
  // hashes (a hash map of a million ids costs a cache miss each, twice).
  std::vector<std::pair<std::size_t, const Descriptor*>> hashed;
  auto hash_id = [&](const Descriptor& rule) {
    if (rule.rate_limit) hashed.emplace_back(std::hash<std::string_view>{}(rule.id), &rule);
  };
  for (const std::string& name : config->domain_names()) {
    for_each_descriptor(config->domain(name)->descriptors, hash_id);
  }
  std::sort(hashed.begin(), hashed.end());
  std::unordered_set<const Descriptor*> shared_id;
  for (std::size_t i = 1; i < hashed.size(); ++i) {
    for (std::size_t j = i; j > 0 && hashed[j - 1].first == hashed[i].first; --j) {
      if (hashed[j - 1].second->id == hashed[i].second->id) {
        shared_id.insert(hashed[j - 1].second);
        shared_id.insert(hashed[i].second);
      }
    }
  }
  auto next = std::make_shared<Snapshot>();
  std::optional<Error> failed;
  auto add = [&](const Descriptor& rule) {
    if (!rule.rate_limit) return;
    Counted c;
    if (const auto same = kept_counters.find(rule.identity); same != kept_counters.end()) {
      c = same->second;
    }
    c.label = shared_id.contains(&rule) ? rule.identity : rule.id;
    if (!c.rule) c.rule = std::make_shared<RuleCounters>();
    if (rule.keyed_stats && !c.values) c.values = std::make_shared<DetailedCounters>();
    if (!rule.keyed_stats) c.values = nullptr;
    next->counters.emplace(&rule, std::move(c));
    if (!rule.rate_limit->quota() || failed) return;
    if (const auto same = kept.find(definition_of(rule)); same != kept.end()) {
      next->states.emplace(&rule, same->second);
      return;
    }
    Result<std::shared_ptr<RuleState>> made = backend_->make_state(rule);
    if (!made) {
      failed = made.error();
      return;
    }
    next->states.emplace(&rule, std::move(*made));
  };
  for (const std::string& name : config->domain_names()) {
    for_each_descriptor(config->domain(name)->descriptors, add);
    Counted c;
    if (const auto same = kept_overrides.find(name); same != kept_overrides.end()) c = same->second;
    c.label = name + ".(limit)";
    if (!c.rule) c.rule = std::make_shared<RuleCounters>();
    next->override_counters.emplace(name, std::move(c));
  }
  if (failed) return *failed;
  next->config = std::move(config);
  return std::shared_ptr<const Snapshot>(std::move(next));
}

std::unique_ptr<Service> Service::create_unconfigured(ServiceOptions options, std::string error) {
  Result<std::unique_ptr<Service>> service =
      create(std::make_shared<const Config>(), std::move(options));
  FLOODGATE_CHECK(service, "an empty configuration has no state to make");
  (*service)->configuration_error_ = std::move(error);
  (*service)->configured_.store(false, std::memory_order_release);
  return std::move(*service);
}

std::string Service::configuration_error() const {
  const std::lock_guard lock(mu_);
  return configuration_error_;
}

Result<void> Service::set_config(std::shared_ptr<const Config> config) {
  const std::shared_ptr<const Snapshot> previous = snapshot();
  Result<std::shared_ptr<const Snapshot>> next = build(std::move(config), previous.get());
  if (!next) {
    if (!configured()) {
      const std::lock_guard lock(mu_);
      configuration_error_ = next.error().message();
    }
    return next.error();
  }
  const std::lock_guard lock(mu_);
  snapshot_ = std::move(*next);
  configured_.store(true, std::memory_order_release);
  return {};
}

std::shared_ptr<const Service::Snapshot> Service::snapshot() const {
  const std::lock_guard lock(mu_);
  return snapshot_;
}

std::shared_ptr<const Config> Service::config() const { return snapshot()->config; }

Response Service::should_rate_limit(const Request& request, Instant now) {
  Pending p;
  p.snapshot = snapshot();
  prepare(request, p);
  if (!p.calls.empty()) backend_->decide(p.calls, now, request.deadline);
  complete(request, now, p);
  return std::move(p.response);
}

std::vector<Response> Service::should_rate_limit_all(std::span<const Request* const> requests,
                                                     Instant now) {
  const std::shared_ptr<const Snapshot> snap = snapshot();
  std::vector<Pending> pending(requests.size());
  std::vector<BackendCall> calls;
  auto deadline = std::chrono::steady_clock::time_point::max();
  for (std::size_t r = 0; r < requests.size(); ++r) {
    pending[r].snapshot = snap;
    prepare(*requests[r], pending[r]);
    calls.insert(calls.end(), pending[r].calls.begin(), pending[r].calls.end());
    if (!pending[r].calls.empty()) deadline = std::min(deadline, requests[r]->deadline);
  }
  if (!calls.empty()) backend_->decide(calls, now, deadline);
  std::vector<Response> out;
  out.reserve(requests.size());
  std::size_t at = 0;
  for (std::size_t r = 0; r < requests.size(); ++r) {
    for (BackendCall& call : pending[r].calls) call = calls[at++];
    complete(*requests[r], now, pending[r]);
    out.push_back(std::move(pending[r].response));
  }
  return out;
}

void Service::prepare(const Request& request, Pending& p) const {
  const Snapshot* s = p.snapshot.get();
  const std::size_t n = request.descriptors.size();
  Response& response = p.response;
  response.config = s->config;
  response.statuses.resize(n);
  // A domain the configuration does not have limits nothing, a descriptor's own limit included.
  // Looked up once for every descriptor.
  const Domain* domain = s->config->domain(request.domain);
  const bool known_domain = domain != nullptr;
  std::vector<Applied>& applied = p.applied;
  applied.resize(n);
  std::vector<std::string_view> replaced;
  for (std::size_t i = 0; i < n; ++i) {
    const RequestDescriptor& d = request.descriptors[i];
    // Its own limit: the configuration is not consulted (as envoyproxy/ratelimit).
    if (d.limit || domain == nullptr) continue;
    applied[i].rule = Config::match(*domain, d.entries);
    if (applied[i].rule != nullptr) {
      for (const std::string& name : applied[i].rule->rate_limit->replaces) {
        replaced.push_back(name);
      }
    }
  }
  std::vector<std::string>& keys = p.keys;
  keys.resize(n);  // The calls' keys; never resized again, so views stay valid.
  std::vector<BackendCall>& calls = p.calls;
  calls.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const RequestDescriptor& d = request.descriptors[i];
    DescriptorStatus& status = response.statuses[i];
    Applied& a = applied[i];
    a.hits = d.hits_addend ? *d.hits_addend : (request.hits_addend == 0 ? 1 : request.hits_addend);
    std::optional<Quota> quota;
    if (d.limit) {
      if (!known_domain) continue;
      status.own_limit = *d.limit;
      a.counted = &s->override_counters.at(std::string(request.domain));
      a.limit = fixed_window_of(*d.limit);
      // A limit of 0, or one that cannot be enforced (the endpoints refuse such a request before
      // it gets here): over, and nothing kept.
      if (validate(a.limit)) quota = a.limit.quota();
      if (quota) keys[i] = override_key(request.domain, d.limit->unit, d.entries);
    } else {
      const Descriptor* rule = a.rule;
      if (rule == nullptr) continue;
      const RateLimit& limit = *rule->rate_limit;
      // Unlimited wins over being replaced, as in envoyproxy/ratelimit.
      if (!limit.unlimited && !limit.name.empty() &&
          std::find(replaced.begin(), replaced.end(), limit.name) != replaced.end()) {
        continue;  // Replaced by another matched rule: not applied.
      }
      status.rule = rule;
      status.quota_mode = options_.quota_mode || rule->quota_mode;
      a.counted = &s->counters.at(rule);
      a.limit = limit;
      if (limit.unlimited) continue;
      if (limit.requests_per_unit != 0) {
        quota = limit.quota();
        keys[i] = Config::state_key(*rule, d.entries);
      }
    }
    if (!quota) continue;
    a.call = calls.size();
    calls.push_back({.state = d.limit ? nullptr : s->states.at(a.rule).get(),
                     .own_limit = d.limit ? quota : std::nullopt,
                     .key = keys[i],
                     .rule = d.limit ? nullptr : a.rule,
                     .domain = request.domain,
                     .entries = d.entries,
                     .hits = a.hits});
  }
}

void Service::complete(const Request& request, Instant now, Pending& p) const {
  const std::vector<Applied>& applied = p.applied;
  const std::vector<BackendCall>& calls = p.calls;
  Response& response = p.response;
  const std::size_t n = request.descriptors.size();
  for (const BackendCall& call : calls) response.backend_failures += call.failed ? 1 : 0;
  std::size_t over_limit = 0;  // Over and not in quota mode.
  std::size_t quota_descriptors = 0;
  std::size_t quota_over = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Applied& a = applied[i];
    if (a.counted == nullptr) continue;
    DescriptorStatus& status = response.statuses[i];
    const RequestDescriptor& d = request.descriptors[i];
    // Envoy's window answers in whole seconds to the end of the window, from 1 to the unit's
    // length, as envoyproxy/ratelimit does; the exact algorithms say their exact wait.
    const bool envoy_window = d.limit || a.limit.algorithm == Algorithm::EnvoyFixedWindow;
    Usage usage{.hits = a.hits};
    bool over = false;
    if (a.limit.unlimited) {
      status.limit_remaining = kUnlimitedRemaining;
    } else if (a.call == SIZE_MAX) {
      over = true;  // A limit of 0: every hit is over.
      status.duration_until_reset =
          envoy_window ? envoy_reset(a.limit.unit, now) : until_window_end(a.limit.unit, now);
    } else {
      const Decision& decision = *calls[a.call].decision;
      over = !decision.allowed();
      status.limit_remaining = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(decision.remaining(), kUnlimitedRemaining));
      status.duration_until_reset =
          envoy_window ? envoy_reset(a.limit.unit, now) : decision.reset_after();
      usage.capacity = decision.limit();
      if (envoy_window) {
        // The window counts every hit: its count before and after this call.
        usage.after =
            over ? decision.limit() + decision.debt() : decision.limit() - decision.remaining();
      } else {
        // Only what is admitted is taken; a denied call's hits are all over.
        usage.after = over ? decision.limit() : decision.limit() - decision.remaining();
      }
      usage.before =
          !envoy_window && over ? decision.limit() : usage.after - std::min(usage.after, a.hits);
    }
    const bool shadow_rule = status.rule != nullptr && status.rule->shadow_mode;
    status.shadowed = over && (options_.shadow_mode || shadow_rule);
    const std::string stats_key = status.rule != nullptr && status.rule->keyed_stats
                                      ? Config::stats_key(request.domain, *status.rule, d.entries)
                                      : std::string();
    count(*a.counted, stats_key, usage, over, status.shadowed, options_.near_limit_ratio);
    // A rule in shadow mode answers OK; the whole service in shadow mode answers each descriptor
    // as it is and only the overall code OK (as envoyproxy/ratelimit).
    if (shadow_rule) over = false;
    status.code = over ? Code::OverLimit : Code::Ok;
    if (status.quota_mode) {
      ++quota_descriptors;
      if (over) ++quota_over;
    } else if (over) {
      ++over_limit;
    }
  }
  // Over the limit if any descriptor is, quota-mode ones only when all of them are.
  if (over_limit > 0 || (quota_descriptors > 0 && quota_over == quota_descriptors)) {
    response.overall = options_.shadow_mode ? Code::Ok : Code::OverLimit;
  }
}

void Service::count(const Counted& counted, const std::string& stats_key, const Usage& usage,
                    bool over, bool shadowed, float near_limit_ratio) {
  // envoyproxy/ratelimit's split of a call's hits: past the limit, over; between the near
  // threshold (floor of the limit times the ratio, in single precision as it computes it) and the
  // limit, near; a call that crosses a threshold splits at it.
  const std::uint64_t limit = usage.capacity;
  const auto near =
      static_cast<std::uint64_t>(std::floor(static_cast<float>(limit) * near_limit_ratio));
  const std::uint64_t hits = usage.hits;
  const auto add = [&](RuleCounters& c) {
    c.total_hits.fetch_add(hits, std::memory_order_relaxed);
    if (over) {
      const std::uint64_t over_hits =
          usage.before >= limit ? hits : usage.after - std::min(usage.after, limit);
      c.over_limit.fetch_add(over_hits, std::memory_order_relaxed);
      if (usage.before < limit) {
        c.near_limit.fetch_add(limit - std::max(near, usage.before), std::memory_order_relaxed);
      }
      if (shadowed) c.shadow_mode.fetch_add(over_hits, std::memory_order_relaxed);
      return;
    }
    c.within_limit.fetch_add(hits, std::memory_order_relaxed);
    if (limit != 0 && usage.after > near) {
      c.near_limit.fetch_add(usage.before >= near ? hits : usage.after - near,
                             std::memory_order_relaxed);
    }
  };
  add(*counted.rule);
  if (counted.values && !stats_key.empty()) add(counted.values->of(stats_key));
}

void Service::write_metrics(std::string& out) const {
  const std::shared_ptr<const Snapshot> s = snapshot();
  struct Row {
    std::string labels;
    const RuleCounters* c;
  };
  std::vector<Row> rows;
  std::vector<Row> value_rows;  // Per value of a `detailed_metric` rule: a family of their own.
  std::string tracked;
  append_family(tracked, "floodgate_rule_tracked_values",
                "Descriptor values with state in this process (at most --max-keys-per-rule).",
                "gauge");
  const auto add_tracked = [&](const std::string& labels, std::size_t n) {
    append_sample(tracked, "floodgate_rule_tracked_values", labels, n);
  };
  for (const std::string& domain : s->config->domain_names()) {
    auto collect = [&](const Descriptor& rule) {
      const auto found = s->counters.find(&rule);
      if (found == s->counters.end()) return;
      const std::string base = "domain=\"" + label_value(domain) + "\",rule=\"" +
                               label_value(found->second.label) + "\"";
      rows.push_back({base, found->second.rule.get()});
      if (const auto state = s->states.find(&rule); state != s->states.end()) {
        add_tracked(base, state->second->tracked());
      }
      if (found->second.values) {
        found->second.values->for_each([&](const std::string& value, const RuleCounters& c) {
          value_rows.push_back({base + ",key=\"" + label_value(value) + "\"", &c});
        });
      }
    };
    for_each_descriptor(s->config->domain(domain)->descriptors, collect);
    const Counted& own = s->override_counters.at(domain);
    rows.push_back(
        {"domain=\"" + label_value(domain) + "\",rule=\"" + label_value(own.label) + "\"",
         own.rule.get()});
  }
  add_tracked("domain=\"\",rule=\"(limit)\"", backend_->own_limits_tracked());
  const struct {
    const char* name;  // floodgate_rule_<name>_total, and floodgate_rule_value_<name>_total.
    const char* help;
    std::atomic<std::uint64_t> RuleCounters::*field;
  } metrics[] = {
      {"hits", "Hits counted against the rule", &RuleCounters::total_hits},
      {"over_limit", "Hits over the limit", &RuleCounters::over_limit},
      {"near_limit",
       "Hits past the near-limit threshold (the limit times --near-limit-ratio, 0.8 by default) "
       "and within the limit",
       &RuleCounters::near_limit},
      {"within_limit", "Hits admitted", &RuleCounters::within_limit},
      {"shadow_mode", "Hits over the limit answered OK by shadow mode", &RuleCounters::shadow_mode},
  };
  // A rule's hits are counted once in floodgate_rule_*; a `detailed_metric` rule's are counted
  // again per value, in families of their own, so that a sum over either family is right.
  for (const auto& [family, help_tail, these] :
       {std::tuple{"floodgate_rule_", ".", &rows},
        std::tuple{"floodgate_rule_value_",
                   ", per descriptor value of a rule with detailed_metric (key: its statistics "
                   "name; at most 1000 values a rule, the rest under _other_).",
                   &value_rows}}) {
    for (const auto& m : metrics) {
      const std::string name = std::string(family) + m.name + "_total";
      append_family(out, name, std::string(m.help) + help_tail, "counter");
      for (const Row& row : *these) {
        append_sample(out, name, row.labels, (row.c->*m.field).load(std::memory_order_relaxed));
      }
    }
  }
  out.append(tracked);
  append_family(out, "floodgate_limit_overrides_untracked_total",
                "Descriptors with a limit of their own decided without state (the override "
                "windows were full: at most --max-keys-per-rule).",
                "counter");
  append_sample(out, "floodgate_limit_overrides_untracked_total", "",
                backend_->own_limits_untracked());
}

}  // namespace floodgate::server
