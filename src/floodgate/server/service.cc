#include "floodgate/server/service.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "floodgate/core/internal/time_math.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/sliding_window.h"

namespace floodgate::server {
namespace {

constexpr std::uint32_t kUnlimitedRemaining = std::numeric_limits<std::uint32_t>::max();

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// GCRA or the token bucket: a keyed limiter of the rule's quota. Past `max_keys`, new keys are
// decided as fresh ones without state.
template <class Rule>
class BucketState final : public RuleState {
 public:
  BucketState(const Quota& quota, std::size_t max_keys)
      : limiter_({.default_quota = quota,
                  .max_keys = max_keys,
                  .overflow = OverflowPolicy::AdmitUntracked}) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    if (hits == 0) return limiter_.peek_at(key, now, 1);  // A check: would one hit pass?
    return limiter_.try_acquire_at(key, now, hits);
  }

  std::size_t tracked() const override { return limiter_.stats().keys; }

 private:
  KeyedLimiter<std::string, Rule, SteadyClock> limiter_;
};

// Per-key state in shards, each a map under a mutex, at most `max_keys` in all. `Slot` is the
// per-key state; `idle(slot, t)` says whether it can be dropped at `t` without changing a
// decision.
template <class Slot>
class ShardedKeys {
 public:
  static constexpr std::size_t kShards = 16;

  explicit ShardedKeys(std::size_t max_keys) {
    for (std::size_t i = 0; i < kShards; ++i) {
      shards_[i].capacity = max_keys / kShards + (i < max_keys % kShards ? 1 : 0);
    }
  }

  // Runs `f(slot, stored)` with the key's shard locked: `slot` is the key's state, or a fresh one
  // when there is none, and `stored` says whether changes to it are kept (false when the shard
  // is full of keys that are not idle).
  template <class Fresh, class Idle, class F>
  auto with(std::string_view key, Fresh fresh, Idle idle, F f) {
    Shard& shard = shards_[KeyHash{}(key) % kShards];
    const std::lock_guard lock(shard.mu);
    if (auto found = shard.entries.find(key); found != shard.entries.end()) {
      return f(found->second, true);
    }
    if (shard.entries.size() >= shard.capacity) {
      // A scan costs the whole shard: after one that left it full, the next `capacity / 8` new
      // keys go untracked without one, so a flood of new keys costs O(1) each, amortized.
      if (shard.skip_scans == 0) {
        std::erase_if(shard.entries, [&](const auto& kv) { return idle(kv.second); });
        if (shard.entries.size() >= shard.capacity) shard.skip_scans = shard.capacity / 8;
      } else {
        --shard.skip_scans;
      }
    }
    if (shard.entries.size() >= shard.capacity) {
      Slot untracked = fresh();
      return f(untracked, false);
    }
    auto [it, inserted] = shard.entries.emplace(std::string(key), fresh());
    return f(it->second, true);
  }

  std::size_t size() const {
    std::size_t n = 0;
    for (const Shard& shard : shards_) {
      const std::lock_guard lock(shard.mu);
      n += shard.entries.size();
    }
    return n;
  }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Slot, KeyHash, std::equal_to<>> entries;  // Guarded by mu.
    std::size_t capacity = 0;
    std::size_t skip_scans = 0;  // New keys to leave untracked before the next scan. Guarded by mu.
  };
  std::array<Shard, kShards> shards_;
};

// envoyproxy/ratelimit's fixed window: windows aligned to the unit; every hit counts, denied
// ones included; over the limit when the count after the hits passes it.
class FixedWindowState final : public RuleState {
 public:
  FixedWindowState(const Quota& quota, std::size_t max_keys)
      : period_(quota.period().count()), limit_(quota.count()), keys_(max_keys) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    const std::int64_t t = internal::clamped_nanos(now);
    const std::int64_t start = internal::floor_div(t, period_) * period_;
    const Nanos until_end{internal::saturating_add(start, period_) - t};
    return keys_.with(
        key, [] { return Window{}; }, [&](const Window& w) { return w.start < start; },
        [&](Window& w, bool) {
          std::uint64_t count = w.start == start ? w.count : 0;
          count = count > std::numeric_limits<std::uint64_t>::max() - hits
                      ? std::numeric_limits<std::uint64_t>::max()
                      : count + hits;
          if (hits > 0 && w.start <= start) w = Window{start, count};
          const bool over = count > limit_;
          const auto left = static_cast<std::int64_t>(over ? 0 : limit_ - count);
          return Decision(over ? Verdict::Denied : Verdict::Allowed, limit_, left, 1,
                          over ? until_end : Nanos::zero(), count == 0 ? Nanos::zero() : until_end);
        });
  }

  std::size_t tracked() const override { return keys_.size(); }

 private:
  struct Window {
    std::int64_t start = std::numeric_limits<std::int64_t>::min();
    std::uint64_t count = 0;
  };
  const std::int64_t period_;
  const std::uint64_t limit_;
  ShardedKeys<Window> keys_;
};

// The sliding-window counter (floodgate's `SlidingWindowCounterLimiter`) per key: only admitted
// hits count.
class SlidingWindowState final : public RuleState {
 public:
  SlidingWindowState(const Quota& quota, std::size_t max_keys) : quota_(quota), keys_(max_keys) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    using Limiter = SlidingWindowCounterLimiter<SteadyClock>;
    return keys_.with(
        key, [&] { return std::make_unique<Limiter>(quota_); },
        [&](const std::unique_ptr<Limiter>& l) {
          return l->peek_at(now, 0).reset_after() == Nanos::zero();
        },
        [&](std::unique_ptr<Limiter>& l, bool) {
          return hits == 0 ? l->peek_at(now, 1) : l->try_acquire_at(now, hits);
        });
  }

  std::size_t tracked() const override { return keys_.size(); }

 private:
  const Quota quota_;
  ShardedKeys<std::unique_ptr<SlidingWindowCounterLimiter<SteadyClock>>> keys_;
};

// Calls `f(rule)` for every rule of `level` and below.
template <class F>
void for_each_rule(const std::vector<Descriptor>& level, F& f) {
  for (const Descriptor& d : level) {
    f(d);
    for_each_rule(d.descriptors, f);
  }
}

// Returns the time until the end of the aligned window of `unit` that holds `now`.
Nanos until_window_end(Unit unit, Instant now) {
  const std::int64_t period = length_of(unit).count();
  const std::int64_t t = internal::clamped_nanos(now);
  return Nanos{internal::floor_div(t, period) * period + period - t};
}

}  // namespace

std::string state_key(const std::vector<Entry>& entries) {
  std::string key;
  for (const Entry& e : entries) {
    key += std::to_string(e.value.size());
    key += ':';
    key += e.value;
  }
  return key;
}

std::string override_key(const std::vector<Entry>& entries) {
  std::string key;
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
  return rule.id + "|" + std::string(to_string(r.algorithm)) + "|" +
         std::string(to_string(r.unit)) + "|" + std::to_string(r.requests_per_unit) + "|" +
         (r.burst ? std::to_string(*r.burst) : std::string("-"));
}

std::shared_ptr<RuleState> make_local_state(const Descriptor& rule, std::size_t max_keys) {
  const Quota quota = *rule.rate_limit->quota();
  switch (rule.rate_limit->algorithm) {
    case Algorithm::Gcra:
      return std::make_shared<BucketState<GcraRule>>(quota, max_keys);
    case Algorithm::TokenBucket:
      return std::make_shared<BucketState<TokenBucketRule>>(quota, max_keys);
    case Algorithm::SlidingWindow:
      return std::make_shared<SlidingWindowState>(quota, max_keys);
    case Algorithm::FixedWindow:
      break;
  }
  return std::make_shared<FixedWindowState>(quota, max_keys);
}

Result<std::shared_ptr<RuleState>> Service::state_for(const Descriptor& rule) const {
  if (!options_.make_state) return make_local_state(rule, options_.max_keys_per_rule);
  return options_.make_state(rule);
}

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
  if (previous != nullptr) {
    for (const auto& [rule, state] : previous->states) kept.emplace(definition_of(*rule), state);
    for (const auto& [rule, c] : previous->counters) kept_counters.emplace(rule->id, c);
  }
  auto next = std::make_shared<Snapshot>();
  std::optional<Error> failed;
  auto add = [&](const Descriptor& rule) {
    if (!rule.rate_limit) return;
    Counted c;
    if (const auto same = kept_counters.find(rule.id); same != kept_counters.end())
      c = same->second;
    if (!c.rule) c.rule = std::make_shared<RuleCounters>();
    if (rule.detailed_metric && !c.values) c.values = std::make_shared<DetailedCounters>();
    if (!rule.detailed_metric) c.values = nullptr;
    next->counters.emplace(&rule, std::move(c));
    if (!rule.rate_limit->quota() || failed) return;
    if (const auto same = kept.find(definition_of(rule)); same != kept.end()) {
      next->states.emplace(&rule, same->second);
      return;
    }
    Result<std::shared_ptr<RuleState>> made = state_for(rule);
    if (!made) {
      failed = made.error();
      return;
    }
    next->states.emplace(&rule, std::move(*made));
  };
  for (const std::string& name : config->domain_names()) {
    for_each_rule(config->domain(name)->descriptors, add);
  }
  if (failed) return *failed;
  next->config = std::move(config);
  return std::shared_ptr<const Snapshot>(std::move(next));
}

Result<void> Service::set_config(std::shared_ptr<const Config> config) {
  const std::shared_ptr<const Snapshot> previous = snapshot();
  Result<std::shared_ptr<const Snapshot>> next = build(std::move(config), previous.get());
  if (!next) return next.error();
  const std::lock_guard lock(mu_);
  snapshot_ = std::move(*next);
  return {};
}

std::shared_ptr<const Service::Snapshot> Service::snapshot() const {
  const std::lock_guard lock(mu_);
  return snapshot_;
}

std::shared_ptr<const Config> Service::config() const { return snapshot()->config; }

const Service::Override* Service::override_for(std::string_view domain,
                                               const LimitOverride& limit) {
  std::string name(domain);
  name.append("|").append(to_string(limit.unit)).append("|");
  name.append(std::to_string(limit.requests_per_unit));
  const std::lock_guard lock(overrides_mu_);
  if (const auto found = overrides_.find(name); found != overrides_.end()) {
    return found->second.get();
  }
  if (overrides_.size() >= options_.max_limit_overrides) return nullptr;
  auto made = std::make_unique<Override>();
  made->domain = std::string(domain);
  made->rule = std::make_unique<Descriptor>();
  Descriptor& rule = *made->rule;
  rule.key = "(limit)";
  rule.id = std::string(domain) + ".(limit " + std::to_string(limit.requests_per_unit) + "/" +
            std::string(to_string(limit.unit)) + ")";
  rule.file = "(request)";
  rule.rate_limit.emplace();
  rule.rate_limit->unit = limit.unit;
  rule.rate_limit->requests_per_unit = limit.requests_per_unit;
  made->counted.rule = std::make_shared<RuleCounters>();
  if (rule.rate_limit->quota()) {
    Result<std::shared_ptr<RuleState>> state = state_for(rule);
    if (!state) return nullptr;
    made->state = std::move(*state);
  }
  return overrides_.emplace(std::move(name), std::move(made)).first->second.get();
}

Response Service::should_rate_limit(const Request& request, Instant now) {
  const std::shared_ptr<const Snapshot> s = snapshot();
  Response response;
  response.config = s->config;
  response.statuses.resize(request.descriptors.size());
  std::vector<const Descriptor*> rules(request.descriptors.size(), nullptr);
  std::vector<const Override*> overrides(request.descriptors.size(), nullptr);
  std::vector<std::string_view> replaced;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const RequestDescriptor& d = request.descriptors[i];
    if (d.limit) {
      // Its own limit: the configuration is not consulted (as envoyproxy/ratelimit).
      overrides[i] = override_for(request.domain, *d.limit);
      if (overrides[i] != nullptr) rules[i] = overrides[i]->rule.get();
      continue;
    }
    rules[i] = s->config->match(request.domain, d.entries);
    if (rules[i] != nullptr) {
      for (const std::string& name : rules[i]->rate_limit->replaces) replaced.push_back(name);
    }
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const Descriptor* rule = rules[i];
    const Override* own = overrides[i];
    DescriptorStatus& status = response.statuses[i];
    const RequestDescriptor& d = request.descriptors[i];
    const std::uint64_t hits =
        d.hits_addend ? *d.hits_addend : (request.hits_addend == 0 ? 1 : request.hits_addend);
    bool over = false;
    if (d.limit && own == nullptr) {
      // Past `max_limit_overrides`: a window of its own, fresh, not kept.
      untracked_overrides_.fetch_add(1, std::memory_order_relaxed);
      const std::uint64_t count = d.limit->requests_per_unit;
      over = hits > count;
      status.limit_remaining = static_cast<std::uint32_t>(over ? 0 : count - hits);
      status.duration_until_reset = until_window_end(d.limit->unit, now);
      status.shadowed = over && options_.shadow_mode;
    } else {
      if (rule == nullptr) continue;
      const RateLimit& limit = *rule->rate_limit;
      if (!limit.name.empty() &&
          std::find(replaced.begin(), replaced.end(), limit.name) != replaced.end()) {
        continue;  // Replaced by another matched rule: not applied.
      }
      status.rule = rule;
      const Counted& counted = own != nullptr ? own->counted : s->counters.at(rule);
      if (limit.unlimited) {
        status.limit_remaining = kUnlimitedRemaining;
        count(counted, d, status, false, hits);
        continue;
      }
      if (limit.requests_per_unit == 0) {
        over = true;
        status.duration_until_reset = until_window_end(limit.unit, now);
      } else {
        RuleState& state = own != nullptr ? *own->state : *s->states.at(rule);
        // An override's state is shared by every key of its domain: keys are part of the state's
        // key, as a rule's path is of a rule's.
        const Decision decision =
            state.decide(own != nullptr ? override_key(d.entries) : state_key(d.entries), hits, now,
                         request.deadline);
        over = !decision.allowed();
        status.limit_remaining = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(decision.remaining(), kUnlimitedRemaining));
        status.duration_until_reset = decision.reset_after();
      }
      if (over && (rule->shadow_mode || options_.shadow_mode)) status.shadowed = true;
      count(counted, d, status, over, hits);
    }
    if (status.shadowed) over = false;
    status.code = over ? Code::OverLimit : Code::Ok;
    if (over) response.overall = Code::OverLimit;
  }
  return response;
}

void Service::count(const Counted& counted, const RequestDescriptor& request,
                    const DescriptorStatus& status, bool over, std::uint64_t hits) {
  const auto add = [&](RuleCounters& c) {
    c.total_hits.fetch_add(hits, std::memory_order_relaxed);
    if (over) {
      c.over_limit.fetch_add(hits, std::memory_order_relaxed);
      if (status.shadowed) c.shadow_mode.fetch_add(hits, std::memory_order_relaxed);
      return;
    }
    c.within_limit.fetch_add(hits, std::memory_order_relaxed);
    const RateLimit& limit = *status.rule->rate_limit;
    // Near: 80% or more of the limit used (as envoyproxy/ratelimit's NEAR_LIMIT_RATIO).
    if (!limit.unlimited &&
        static_cast<std::uint64_t>(status.limit_remaining) * 5 <= limit.requests_per_unit) {
      c.near_limit.fetch_add(hits, std::memory_order_relaxed);
    }
  };
  add(*counted.rule);
  if (counted.values && !request.entries.empty()) {
    add(counted.values->of(request.entries.back().value));
  }
}

void Service::write_metrics(std::string& out) const {
  const std::shared_ptr<const Snapshot> s = snapshot();
  struct Row {
    std::string labels;
    const RuleCounters* c;
  };
  std::vector<Row> rows;
  std::string tracked =
      "# HELP floodgate_rule_tracked_values Descriptor values with state in this process "
      "(at most --max-keys-per-rule).\n# TYPE floodgate_rule_tracked_values gauge\n";
  for (const std::string& domain : s->config->domain_names()) {
    auto collect = [&](const Descriptor& rule) {
      const auto found = s->counters.find(&rule);
      if (found == s->counters.end()) return;
      const std::string base =
          "domain=\"" + label_value(domain) + "\",rule=\"" + label_value(rule.id) + "\"";
      rows.push_back({base, found->second.rule.get()});
      if (const auto state = s->states.find(&rule); state != s->states.end()) {
        tracked.append("floodgate_rule_tracked_values{")
            .append(base)
            .append("} ")
            .append(std::to_string(state->second->tracked()))
            .append("\n");
      }
      if (found->second.values) {
        found->second.values->for_each([&](const std::string& value, const RuleCounters& c) {
          rows.push_back({base + ",value=\"" + label_value(value) + "\"", &c});
        });
      }
    };
    for_each_rule(s->config->domain(domain)->descriptors, collect);
  }
  std::uint64_t untracked = untracked_overrides_.load(std::memory_order_relaxed);
  {
    const std::lock_guard lock(overrides_mu_);
    for (const auto& [name, o] : overrides_) {
      const std::string base =
          "domain=\"" + label_value(o->domain) + "\",rule=\"" + label_value(o->rule->id) + "\"";
      rows.push_back({base, o->counted.rule.get()});
      if (o->state) {
        tracked.append("floodgate_rule_tracked_values{")
            .append(base)
            .append("} ")
            .append(std::to_string(o->state->tracked()))
            .append("\n");
      }
    }
  }
  const struct {
    const char* name;
    const char* help;
    std::atomic<std::uint64_t> RuleCounters::*field;
  } metrics[] = {
      {"floodgate_rule_total_hits", "Hits counted against the rule.", &RuleCounters::total_hits},
      {"floodgate_rule_over_limit", "Hits over the limit.", &RuleCounters::over_limit},
      {"floodgate_rule_near_limit", "Hits admitted with 80% or more of the limit used.",
       &RuleCounters::near_limit},
      {"floodgate_rule_within_limit", "Hits admitted.", &RuleCounters::within_limit},
      {"floodgate_rule_shadow_mode", "Hits over the limit answered OK by shadow mode.",
       &RuleCounters::shadow_mode},
  };
  for (const auto& m : metrics) {
    out.append("# HELP ").append(m.name).append(" ").append(m.help).append("\n");
    out.append("# TYPE ").append(m.name).append(" counter\n");
    for (const Row& row : rows) {
      out.append(m.name)
          .append("{")
          .append(row.labels)
          .append("} ")
          .append(std::to_string((row.c->*m.field).load(std::memory_order_relaxed)))
          .append("\n");
    }
  }
  out.append(tracked);
  out.append(
      "# HELP floodgate_limit_overrides_untracked_total Descriptors with a limit of their own "
      "decided without state (more distinct override limits than the service keeps).\n"
      "# TYPE floodgate_limit_overrides_untracked_total counter\n"
      "floodgate_limit_overrides_untracked_total ");
  out.append(std::to_string(untracked)).append("\n");
}

}  // namespace floodgate::server
