#include "floodgate/server/service.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>
#include <memory>
#include <unordered_set>
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

// A `T` made on first use, so that a configuration of many rules costs memory only for the rules
// requests reach. Thread-safe: concurrent first uses race to publish one, with one CAS.
template <class T>
class MadeOnUse {
 public:
  MadeOnUse() = default;
  ~MadeOnUse() { delete made_.load(std::memory_order_acquire); }
  MadeOnUse(const MadeOnUse&) = delete;
  MadeOnUse& operator=(const MadeOnUse&) = delete;

  // Returns the `T`, made by `make()` if none is yet.
  template <class Make>
  T& get(Make make) {
    T* t = made_.load(std::memory_order_acquire);
    if (t != nullptr) return *t;
    auto fresh = make();
    if (made_.compare_exchange_strong(t, fresh.get(), std::memory_order_acq_rel)) {
      return *fresh.release();
    }
    return *t;  // Another thread's, published first.
  }

  // Returns the `T`, or null if none was made.
  const T* peek() const { return made_.load(std::memory_order_acquire); }

 private:
  std::atomic<T*> made_{nullptr};
};

// GCRA or the token bucket: a keyed limiter of the rule's quota, made on first use. Past
// `max_keys`, new keys are decided as fresh ones without state.
template <class Rule>
class BucketState final : public RuleState {
 public:
  BucketState(const Quota& quota, std::size_t max_keys) : quota_(quota), max_keys_(max_keys) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    Limiter& limiter = limiter_.get([&] {
      return std::make_unique<Limiter>(
          typename Limiter::Options{.default_quota = quota_,
                                    .max_keys = max_keys_,
                                    .overflow = OverflowPolicy::AdmitUntracked});
    });
    if (hits == 0) return limiter.peek_at(key, now, 1);  // A check: would one hit pass?
    return limiter.try_acquire_at(key, now, hits);
  }

  std::size_t tracked() const override {
    const Limiter* limiter = limiter_.peek();
    return limiter == nullptr ? 0 : limiter->stats().keys;
  }

 private:
  using Limiter = KeyedLimiter<std::string, Rule, SteadyClock>;
  const Quota quota_;
  const std::size_t max_keys_;
  MadeOnUse<Limiter> limiter_;
};

// Per-key state in shards, each a map under a mutex, at most `max_keys` in all. `Slot` is the
// per-key state; `idle(slot, t)` says whether it can be dropped at `t` without changing a
// decision.
template <class Slot>
class ShardedKeys {
 public:
  static constexpr std::size_t kShards = 16;

  // The shards are made on first use.
  explicit ShardedKeys(std::size_t max_keys) : max_keys_(max_keys) {}

  // Runs `f(slot, stored)` with the key's shard locked: `slot` is the key's state, or a fresh one
  // when there is none, and `stored` says whether changes to it are kept (false when the shard
  // is full of keys that are not idle).
  template <class Fresh, class Idle, class F>
  auto with(std::string_view key, Fresh fresh, Idle idle, F f) {
    Shard& shard = shards_.get([&] {
      auto made = std::make_unique<std::array<Shard, kShards>>();
      for (std::size_t i = 0; i < kShards; ++i) {
        (*made)[i].capacity = max_keys_ / kShards + (i < max_keys_ % kShards ? 1 : 0);
      }
      return made;
    })[KeyHash{}(key) % kShards];
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
      untracked_.fetch_add(1, std::memory_order_relaxed);
      Slot untracked = fresh();
      return f(untracked, false);
    }
    auto [it, inserted] = shard.entries.emplace(std::string(key), fresh());
    return f(it->second, true);
  }

  std::size_t size() const {
    std::size_t n = 0;
    const std::array<Shard, kShards>* shards = shards_.peek();
    if (shards == nullptr) return 0;
    for (const Shard& shard : *shards) {
      const std::lock_guard lock(shard.mu);
      n += shard.entries.size();
    }
    return n;
  }

  // Returns how many calls found no room for their key.
  std::uint64_t untracked() const { return untracked_.load(std::memory_order_relaxed); }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Slot, KeyHash, std::equal_to<>> entries;  // Guarded by mu.
    std::size_t capacity = 0;
    std::size_t skip_scans = 0;  // New keys to leave untracked before the next scan. Guarded by mu.
  };
  const std::size_t max_keys_;
  MadeOnUse<std::array<Shard, kShards>> shards_;
  std::atomic<std::uint64_t> untracked_{0};
};

// One envoyproxy/ratelimit window: aligned to its period, every hit counts (denied ones
// included), over the limit when the count after the hits passes it.
struct Window {
  std::int64_t start = std::numeric_limits<std::int64_t>::min();
  std::uint64_t count = 0;
};

// Decides `hits` against `limit` in `w` at `t` (nanoseconds), for windows of `period`.
Decision decide_window(Window& w, std::int64_t t, std::int64_t period, std::uint64_t limit,
                       std::uint64_t hits) {
  const std::int64_t start = internal::floor_div(t, period) * period;
  const Nanos until_end{internal::saturating_add(start, period) - t};
  std::uint64_t count = w.start == start ? w.count : 0;
  count = count > std::numeric_limits<std::uint64_t>::max() - hits
              ? std::numeric_limits<std::uint64_t>::max()
              : count + hits;
  if (hits > 0 && w.start <= start) w = Window{start, count};
  const bool over = count > limit;
  const auto left = static_cast<std::int64_t>(over ? 0 : limit - count);
  return Decision(over ? Verdict::Denied : Verdict::Allowed, limit, left, 1,
                  over ? until_end : Nanos::zero(), count == 0 ? Nanos::zero() : until_end);
}

// envoyproxy/ratelimit's fixed window per key.
class FixedWindowState final : public RuleState {
 public:
  FixedWindowState(const Quota& quota, std::size_t max_keys)
      : period_(quota.period().count()), limit_(quota.count()), keys_(max_keys) {}

  Decision decide(std::string_view key, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    const std::int64_t t = internal::clamped_nanos(now);
    const std::int64_t start = internal::floor_div(t, period_) * period_;
    return keys_.with(
        key, [] { return Window{}; }, [&](const Window& w) { return w.start < start; },
        [&](Window& w, bool) { return decide_window(w, t, period_, limit_, hits); });
  }

  std::size_t tracked() const override { return keys_.size(); }

 private:
  const std::int64_t period_;
  const std::uint64_t limit_;
  ShardedKeys<Window> keys_;
};

// Descriptors' own limits in this process: one window per key, unit and count.
class LocalOverrideState final : public OverrideState {
 public:
  explicit LocalOverrideState(std::size_t max_keys) : keys_(max_keys) {}

  Decision decide(std::string_view key, const LimitOverride& limit, std::uint64_t hits, Instant now,
                  std::chrono::steady_clock::time_point) override {
    const std::int64_t period = length_of(limit.unit).count();
    const std::int64_t t = internal::clamped_nanos(now);
    return keys_.with(
        key,
        [&] {
          return Slot{Window{}, period};
        },
        // Idle once its window has ended: dropping it then changes no decision.
        [&](const Slot& e) { return internal::saturating_add(e.window.start, e.period) <= t; },
        [&](Slot& e, bool) {
          return decide_window(e.window, t, period, limit.requests_per_unit, hits);
        });
  }

  std::size_t tracked() const override { return keys_.size(); }
  std::uint64_t untracked() const override { return keys_.untracked(); }

 private:
  struct Slot {
    Window window;
    std::int64_t period;  // The unit's length: keys of every unit share the container.
  };
  ShardedKeys<Slot> keys_;
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

std::string override_key(std::string_view domain, const LimitOverride& limit,
                         const std::vector<Entry>& entries) {
  std::string key(1, static_cast<char>('0' + static_cast<int>(limit.unit)));
  key += std::to_string(limit.requests_per_unit);
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

std::optional<LimitOverride> limit_of_override_key(std::string_view key) {
  if (key.size() < 3 || key[0] < '0' || key[0] > '6') return std::nullopt;
  LimitOverride limit;
  limit.unit = static_cast<Unit>(key[0] - '0');
  const auto [end, ec] =
      std::from_chars(key.data() + 1, key.data() + key.size(), limit.requests_per_unit);
  if (ec != std::errc() || end == key.data() + key.size() || *end != '|') return std::nullopt;
  return limit;
}

std::string definition_of(const Descriptor& rule) {
  const RateLimit& r = *rule.rate_limit;
  return rule.identity + "|" + std::string(to_string(r.algorithm)) + "|" +
         std::string(to_string(r.unit)) + "|" + std::to_string(r.requests_per_unit) + "|" +
         (r.burst ? std::to_string(*r.burst) : std::string("-"));
}

namespace {

// Returns `limit` as the fixed-window rate limit it stands for, unvalidated.
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

std::shared_ptr<OverrideState> make_local_override_state(std::size_t max_keys) {
  return std::make_shared<LocalOverrideState>(max_keys);
}

Service::Service(ServiceOptions options)
    : options_(std::move(options)),
      overrides_(options_.override_state != nullptr
                     ? options_.override_state
                     : make_local_override_state(options_.max_keys_per_rule)) {
  other_overrides_.label = "(limit)";
  other_overrides_.rule = std::make_shared<RuleCounters>();
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
    for_each_rule(config->domain(name)->descriptors, hash_id);
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

bool Service::decide_override(const Snapshot& s, const Request& request, const RequestDescriptor& d,
                              std::uint64_t hits, Instant now, DescriptorStatus& status) {
  const LimitOverride& limit = *d.limit;
  status.own_limit = limit;
  const auto counters = s.override_counters.find(std::string(request.domain));
  const Counted& counted =
      counters != s.override_counters.end() ? counters->second : other_overrides_;
  const RateLimit rate = fixed_window_of(limit);
  bool over = true;
  // A limit of 0, or one that cannot be enforced (the endpoints refuse such a request before it
  // gets here): over, and nothing kept.
  if (limit.requests_per_unit == 0 || !validate(rate)) {
    status.duration_until_reset = until_window_end(limit.unit, now);
  } else {
    const Decision decision = overrides_->decide(override_key(request.domain, limit, d.entries),
                                                 limit, hits, now, request.deadline);
    over = !decision.allowed();
    status.limit_remaining = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(decision.remaining(), kUnlimitedRemaining));
    status.duration_until_reset = decision.reset_after();
  }
  status.shadowed = over && options_.shadow_mode;
  count(counted, d, status, rate, over, hits);
  return over;
}

Response Service::should_rate_limit(const Request& request, Instant now) {
  const std::shared_ptr<const Snapshot> s = snapshot();
  Response response;
  response.config = s->config;
  response.statuses.resize(request.descriptors.size());
  std::vector<const Descriptor*> rules(request.descriptors.size(), nullptr);
  std::vector<std::string_view> replaced;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const RequestDescriptor& d = request.descriptors[i];
    // Its own limit: the configuration is not consulted (as envoyproxy/ratelimit).
    if (d.limit) continue;
    rules[i] = s->config->match(request.domain, d.entries);
    if (rules[i] != nullptr) {
      for (const std::string& name : rules[i]->rate_limit->replaces) replaced.push_back(name);
    }
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const Descriptor* rule = rules[i];
    DescriptorStatus& status = response.statuses[i];
    const RequestDescriptor& d = request.descriptors[i];
    const std::uint64_t hits =
        d.hits_addend ? *d.hits_addend : (request.hits_addend == 0 ? 1 : request.hits_addend);
    bool over = false;
    if (d.limit) {
      over = decide_override(*s, request, d, hits, now, status);
    } else {
      if (rule == nullptr) continue;
      const RateLimit& limit = *rule->rate_limit;
      if (!limit.name.empty() &&
          std::find(replaced.begin(), replaced.end(), limit.name) != replaced.end()) {
        continue;  // Replaced by another matched rule: not applied.
      }
      status.rule = rule;
      const Counted& counted = s->counters.at(rule);
      if (limit.unlimited) {
        status.limit_remaining = kUnlimitedRemaining;
        count(counted, d, status, limit, false, hits);
        continue;
      }
      if (limit.requests_per_unit == 0) {
        over = true;
        status.duration_until_reset = until_window_end(limit.unit, now);
      } else {
        const Decision decision =
            s->states.at(rule)->decide(state_key(d.entries), hits, now, request.deadline);
        over = !decision.allowed();
        status.limit_remaining = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(decision.remaining(), kUnlimitedRemaining));
        status.duration_until_reset = decision.reset_after();
      }
      if (over && (rule->shadow_mode || options_.shadow_mode)) status.shadowed = true;
      count(counted, d, status, limit, over, hits);
    }
    if (status.shadowed) over = false;
    status.code = over ? Code::OverLimit : Code::Ok;
    if (over) response.overall = Code::OverLimit;
  }
  return response;
}

void Service::count(const Counted& counted, const RequestDescriptor& request,
                    const DescriptorStatus& status, const RateLimit& limit, bool over,
                    std::uint64_t hits) {
  const auto add = [&](RuleCounters& c) {
    c.total_hits.fetch_add(hits, std::memory_order_relaxed);
    if (over) {
      c.over_limit.fetch_add(hits, std::memory_order_relaxed);
      if (status.shadowed) c.shadow_mode.fetch_add(hits, std::memory_order_relaxed);
      return;
    }
    c.within_limit.fetch_add(hits, std::memory_order_relaxed);
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
  const auto add_tracked = [&](const std::string& labels, std::size_t n) {
    tracked.append("floodgate_rule_tracked_values{")
        .append(labels)
        .append("} ")
        .append(std::to_string(n))
        .append("\n");
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
          rows.push_back({base + ",value=\"" + label_value(value) + "\"", &c});
        });
      }
    };
    for_each_rule(s->config->domain(domain)->descriptors, collect);
    const Counted& own = s->override_counters.at(domain);
    rows.push_back(
        {"domain=\"" + label_value(domain) + "\",rule=\"" + label_value(own.label) + "\"",
         own.rule.get()});
  }
  rows.push_back({"domain=\"\",rule=\"(limit)\"", other_overrides_.rule.get()});
  add_tracked("domain=\"\",rule=\"(limit)\"", overrides_->tracked());
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
      "decided without state (the override windows were full: at most --max-keys-per-rule).\n"
      "# TYPE floodgate_limit_overrides_untracked_total counter\n"
      "floodgate_limit_overrides_untracked_total ");
  out.append(std::to_string(overrides_->untracked())).append("\n");
}

}  // namespace floodgate::server
