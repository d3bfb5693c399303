#include "floodgate/redis/redis_limiter.h"

#include <array>
#include <charconv>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <variant>

#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/string_hash.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/limiters/internal/token_bucket_rule.h"
#include "floodgate/limiters/internal/window_rules.h"
#include "floodgate/limiters/rules.h"
#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/cluster_slots.h"
#include "floodgate/redis/internal/scripts.h"
#include "floodgate/redis/internal/url.h"

namespace floodgate {
namespace {

using internal::Deadline;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::int64_t kSecond = 1'000'000'000;
// Fixed window counts are Lua numbers (doubles): exact below 2^53.
constexpr std::uint64_t kMaxWindowCount = std::uint64_t{1} << 53;
// A TTL slack beyond this is a mistake (and its milliseconds stay exact in the script's doubles).
constexpr Nanos kMaxTtlSlack = std::chrono::hours(24 * 3653);

// A script's arguments, numbers formatted in place: no allocation per call.
class ScriptArgs {
 public:
  // Adds `text`, which must outlive the call.
  void add(std::string_view text) noexcept { views_[n_++] = text; }

  // Adds an integer as decimal, or a double as the shortest text that reads back exactly.
  template <class Number>
  void add_number(Number value) noexcept {
    char* begin = storage_[n_].data();
    char* end = std::to_chars(begin, begin + storage_[n_].size(), value).ptr;
    views_[n_++] = std::string_view(begin, static_cast<std::size_t>(end - begin));
  }

  std::span<const std::string_view> span() const noexcept { return {views_.data(), n_}; }

 private:
  static constexpr std::size_t kMax = 8;
  std::array<std::array<char, 32>, kMax> storage_;
  std::array<std::string_view, kMax> views_;
  std::size_t n_ = 0;
};

// A script's reply split at spaces: at most four fields (`size` is 5 when there were more).
struct Fields {
  std::array<std::string_view, 4> at;
  std::size_t size = 0;
  std::string_view operator[](std::size_t i) const { return at[i]; }
};

Fields fields(std::string_view text) {
  Fields out;
  while (!text.empty()) {
    if (out.size == out.at.size()) {
      out.size = out.at.size() + 1;
      break;
    }
    const auto space = text.find(' ');
    out.at[out.size++] = text.substr(0, space);
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return out;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Splits `n` nanoseconds into whole seconds (rounded down) and the nanoseconds left, [0, 10^9):
// how the GCRA scripts take 64-bit counts, each part exact in Lua's doubles.
std::pair<std::int64_t, std::int64_t> split_nanos(std::int64_t n) {
  const std::int64_t seconds = internal::floor_div(n, kSecond);
  return {seconds, n - seconds * kSecond};
}

// The instant of a GCRA script's reply, "<seconds> <fraction>" in nanoseconds: the fraction is
// TIME's microseconds for a server-time call, else the nanoseconds sent; nothing if the text is
// not such an instant.
std::optional<std::int64_t> gcra_reply_instant(std::string_view seconds_text,
                                               std::string_view fraction_text, bool server_time) {
  std::int64_t seconds = 0;
  std::int64_t fraction = 0;
  if (!parse_number(seconds_text, seconds) || !parse_number(fraction_text, fraction) ||
      fraction < 0 || fraction >= (server_time ? 1'000'000 : kSecond) ||
      seconds > std::numeric_limits<std::int64_t>::max() / kSecond ||
      seconds < std::numeric_limits<std::int64_t>::min() / kSecond) {
    return std::nullopt;
  }
  return internal::saturating_add(seconds * kSecond, server_time ? fraction * 1000 : fraction);
}

// Why a script's `outcome` brought no reply to read (BreakerOpen: it was not sent), with the
// message for `last_error` in `why`; None when it brought one.
RedisFailure outcome_failure(const internal::ScriptOutcome& outcome, std::string& why) {
  if (outcome.refused) return RedisFailure::BreakerOpen;
  if (!outcome.reply) {
    why = outcome.reply.error().message();
    return why.find("timed out") != std::string::npos ? RedisFailure::Timeout
                                                      : RedisFailure::Unreachable;
  }
  if (outcome.reply->is_error()) {
    why = "redis: " + outcome.reply->text;
    return RedisFailure::ErrorReply;
  }
  return RedisFailure::None;
}

Instant unix_now() {
  return Instant{
      std::chrono::duration_cast<Nanos>(std::chrono::system_clock::now().time_since_epoch())};
}

// The fixed window's period as the script takes it: whole seconds, or nanoseconds dividing a
// second.
struct WindowPeriod {
  std::int64_t seconds = 0;
  std::int64_t nanos = 0;
};

Result<WindowPeriod> window_period(const Quota& quota) {
  const std::int64_t period = quota.period().count();
  if (quota.count() > kMaxWindowCount) {
    return Error("quota " + internal::quoted(quota.to_string()) +
                 ": a fixed window on Redis counts at most 2^53 per window (got " +
                 std::to_string(quota.count()) + ")");
  }
  if (period % kSecond == 0) return WindowPeriod{period / kSecond, 0};
  if (kSecond % period == 0) return WindowPeriod{0, period};
  return Error("quota " + internal::quoted(quota.to_string()) +
               ": a fixed window on Redis needs a period of whole seconds or one that divides a "
               "second (got " +
               std::to_string(period) + " ns)");
}

// What a script reported of a key's state: for GCRA and the token bucket the state the call
// was decided on, for the fixed window its window and the hits counted in it before the call.
struct KeyState {
  internal::Gcra::State gcra = internal::Gcra::kFull;
  internal::TokenBucket::State bucket = internal::TokenBucket::kFull;
  internal::EnvoyFixedWindow::State window = internal::EnvoyFixedWindow::kFull;
};

// Returns the decision the algorithm's rule makes for `cost` at `t` on the state `s`: the same
// code as the in-process limiters.
Decision rule_decision(Algorithm algorithm, const KeyState& s, std::int64_t t, std::uint64_t cost,
                       const Quota& quota) {
  const Instant at{Nanos{t}};
  switch (algorithm) {
    case Algorithm::TokenBucket:
      return internal::TokenBucket::acquire(s.bucket, at, cost,
                                            internal::TokenBucket::params(quota))
          .decision;
    case Algorithm::EnvoyFixedWindow:
      return internal::EnvoyFixedWindow::acquire(s.window, at, cost,
                                                 internal::EnvoyFixedWindow::params(quota))
          .decision;
    default:
      break;
  }
  return internal::Gcra::acquire(s.gcra, at, cost, internal::Gcra::params(quota)).decision;
}

}  // namespace

std::string quoted_redis_url(std::string_view url) { return internal::quoted_url(url); }

std::string_view to_string(OnRedisFailure policy) noexcept {
  switch (policy) {
    case OnRedisFailure::FailOpen:
      return "fail-open";
    case OnRedisFailure::FailClosed:
      return "fail-closed";
    case OnRedisFailure::Fallback:
      return "fallback";
  }
  return "?";
}

Result<OnRedisFailure> parse_on_redis_failure(std::string_view name) {
  for (const OnRedisFailure p :
       {OnRedisFailure::Fallback, OnRedisFailure::FailOpen, OnRedisFailure::FailClosed}) {
    if (name == to_string(p)) return p;
  }
  return Error(internal::quoted(name) + " must be fallback, fail-open or fail-closed");
}

std::string_view to_string(RedisFailure failure) noexcept {
  switch (failure) {
    case RedisFailure::None:
      return "none";
    case RedisFailure::Timeout:
      return "timeout";
    case RedisFailure::Unreachable:
      return "unreachable";
    case RedisFailure::BreakerOpen:
      return "breaker-open";
    case RedisFailure::ErrorReply:
      return "error-reply";
    case RedisFailure::OutOfTime:
      return "out-of-time";
  }
  return "?";
}

std::string_view to_string(DecisionSource source) noexcept {
  switch (source) {
    case DecisionSource::Redis:
      return "redis";
    case DecisionSource::DenyCache:
      return "deny-cache";
    case DecisionSource::FailOpen:
      return "fail-open";
    case DecisionSource::FailClosed:
      return "fail-closed";
    case DecisionSource::Fallback:
      return "fallback";
  }
  return "?";
}

namespace {

// Returns the script that decides for `algorithm`.
const internal::Script& script_of(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::TokenBucket:
      return internal::token_bucket_script();
    case Algorithm::EnvoyFixedWindow:
      return internal::fixed_window_script();
    default:
      break;
  }
  return internal::gcra_script();
}

}  // namespace

// The limiter's state: the client, the deny cache and the fallback.
class RedisLimiter::Impl {
 public:
  // `client`: connections made for `options` (`make_client`), or shared with another limiter
  // whose connection options are the same.
  Impl(RedisLimiterOptions options, std::shared_ptr<internal::RedisClient> client)
      : options_(std::move(options)),
        cluster_(internal::parse_redis_url(options_.url).value().cluster),
        client_(std::move(client)) {
    if (options_.on_failure == OnRedisFailure::Fallback) make_fallback();
    for (auto& shard : deny_shards_) {
      shard.capacity = options_.deny_cache_keys / kDenyShards +
                       (options_.deny_cache_keys % kDenyShards != 0 ? 1 : 0);
    }
  }

  // Returns the connections to `url` that `options` asks for, or an error naming a TLS file that
  // cannot be used.
  static Result<std::shared_ptr<internal::RedisClient>> make_client(
      const RedisLimiterOptions& options, const internal::RedisUrl& url) {
    internal::ClientOptions client;
    if (url.tls) {
      Result<std::shared_ptr<const internal::TlsContext>> tls =
          internal::TlsContext::create({.ca_file = options.tls_ca_file,
                                        .cert_file = options.tls_cert_file,
                                        .key_file = options.tls_key_file,
                                        .verify_hostname = options.tls_verify_hostname});
      if (!tls) {
        return Error("redis URL " + internal::quoted_url(options.url) + ": " +
                     tls.error().message());
      }
      client.tls = std::move(*tls);
    }
    client.connections = options.connections;
    client.connect_timeout = options.connect_timeout;
    client.min_backoff = options.reconnect_backoff_min;
    client.max_backoff = options.reconnect_backoff_max;
    client.breaker_failures = options.breaker_failures;
    client.breaker_open_for = options.breaker_open_for;
    std::shared_ptr<internal::RedisClient> made;
    if (url.cluster) {
      made = internal::make_cluster_client(url, client);
    } else if (!url.master.empty()) {
      made = internal::make_sentinel_client(url, client);
    } else {
      made = internal::make_standalone_client(url, client);
    }
    return made;
  }

  const std::shared_ptr<internal::RedisClient>& client() const noexcept { return client_; }

  // Decides with Redis, waiting for it until `deadline` at the latest, under `quota` if given,
  // else the key's.
  RedisDecision decide(std::string_view key, std::optional<Instant> at, std::uint64_t cost,
                       bool write, SteadyTime deadline = SteadyTime::max(),
                       const Quota* quota = nullptr);

  // A call on its way to Redis: what it asks, what goes to the server, and what came back.
  struct Pending {
    Pending(std::string_view k, std::optional<Instant> a, std::uint64_t c, bool w, Quota q)
        : key(k), at(a), cost(c), write(w), quota(q) {}
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;

    std::string_view key;
    std::optional<Instant> at;
    std::uint64_t cost;
    bool write;
    Quota quota;
    SteadyTime sent{};
    std::int64_t steady_now = 0;
    std::optional<RedisDecision> decided;  // Decided without Redis.
    // What is sent: a script on `stored` with `args`, or `commands`.
    std::string stored;
    ScriptArgs args;
    std::array<std::string, 2> commands;
    internal::BatchItem item;
    std::uint64_t hits = 0;         // envoy_keys: the hits counted.
    std::int64_t window_start = 0;  // envoy_keys: the window's start, in Unix seconds.
  };

  // Makes `p` ready to send and returns true; or decides it without Redis (the deny cache, a
  // passed deadline, a quota Redis cannot hold) into `p.decided` and returns false.
  bool prepare(Pending& p, SteadyTime deadline);
  // Returns the decision of `p`, sent, from its outcome.
  RedisDecision finish(Pending& p);

  // `RedisLimiter::acquire_all` and `acquire_all_at` (`at` empty: the server's instant).
  static Result<RedisAllOrNone> acquire_all(std::span<RedisCall> calls, std::optional<Instant> at,
                                            SteadyTime deadline);

  // The latest a call sent at `sent` waits for: `deadline`, or twice the command timeout (the
  // round trip ahead of it on its connection, then its own) with a connect.
  SteadyTime hard_deadline(SteadyTime sent, SteadyTime deadline) const {
    const Nanos most = 2 * options_.command_timeout + options_.connect_timeout;
    return deadline - sent > most ? sent + most : deadline;
  }

  Quota quota_of(std::string_view key) const {
    if (options_.resolver) {
      if (std::optional<Quota> q = options_.resolver(key)) return *q;
    }
    return options_.default_quota;
  }

  const RedisLimiterOptions& options() const noexcept { return options_; }

  RedisLimiterStats stats() const {
    RedisLimiterStats s;
    s.decisions = decisions_.load(std::memory_order_relaxed);
    s.redis_decisions = redis_decisions_.load(std::memory_order_relaxed);
    s.deny_cache_hits = deny_cache_hits_.load(std::memory_order_relaxed);
    s.policy_decisions = policy_decisions_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.breaker_refusals = breaker_refusals_.load(std::memory_order_relaxed);
    s.deadline_refusals = deadline_refusals_.load(std::memory_order_relaxed);
    const internal::ClientStats c = client_->stats();
    s.breaker_opens = c.breaker_opens;
    s.redirects = c.redirects;
    s.topology_refreshes = c.refreshes;
    s.round_trips = c.round_trips;
    s.commands = c.commands;
    s.connects = c.connects;
    s.noscript_retries = c.noscript;
    return s;
  }

  std::string last_error() const {
    const std::lock_guard lock(error_mu_);
    return last_error_;
  }

  Result<void> connect(Nanos timeout) {
    // GCRA's limiters load the all-or-none script too (`acquire_all`).
    const std::array<const internal::Script*, 2> scripts = {&script_of(options_.algorithm),
                                                            &internal::gcra_all_script()};
    const std::size_t n = options_.algorithm == Algorithm::Gcra && !options_.envoy_keys ? 2 : 1;
    const SteadyTime now = std::chrono::steady_clock::now();
    const SteadyTime deadline =
        timeout >= SteadyTime::max() - now ? SteadyTime::max() : now + timeout;
    Result<void> ready = client_->prepare(std::span(scripts.data(), n), deadline);
    if (!ready) {
      const std::lock_guard lock(error_mu_);
      last_error_ = ready.error().message();
    }
    return ready;
  }

 private:
  // The latest denial of a key: the state it was decided on (the fixed window's after it) and
  // when. Every later state of the key is at least as used (state only moves forward), so a
  // call that this state denies, Redis would deny too.
  struct Denial {
    KeyState state;
    Quota quota;
    bool server_time;
    std::int64_t decided_at;  // The decision's instant (the server's for a server-time call).
    std::int64_t sent_at;     // Steady-clock nanoseconds when the request was sent.
  };
  using KeyHash = internal::StringHash;
  struct DenyShard {
    std::mutex mu;
    std::unordered_map<std::string, Denial, KeyHash, std::equal_to<>> entries;  // Guarded by mu.
    std::size_t capacity = 0;
  };
  static constexpr std::size_t kDenyShards = 16;

  template <class Rule>
  using Fallback = std::unique_ptr<KeyedLimiter<std::string, Rule>>;

  Quota share_of(const Quota& quota) const {
    const auto scale = [&](std::uint64_t n) {
      const auto scaled =
          static_cast<std::uint64_t>(static_cast<double>(n) * options_.fallback_share);
      return std::max<std::uint64_t>(1, std::min(n, scaled));
    };
    Result<Quota> shared = Quota::make(quota.period(), scale(quota.count()), scale(quota.burst()));
    return shared ? *shared : quota;
  }

  // The fallback: a keyed limiter of the algorithm. GCRA and the window take each call's quota
  // with the call; the token bucket's come from tiers, through the resolver.
  void make_fallback() {
    const auto make = [&]<class Rule>(Rule) {
      typename KeyedLimiter<std::string, Rule>::Options o;
      o.default_quota = share_of(options_.default_quota);
      o.max_keys = 100'000;
      o.overflow = OverflowPolicy::SharedOverflow;
      if constexpr (!internal::kSelfTimed<typename Rule::Impl>) {
        if (const auto resolver = options_.resolver) {
          o.resolver = [this, resolver](std::string_view k) -> std::optional<Quota> {
            if (std::optional<Quota> q = resolver(k)) return share_of(*q);
            return std::nullopt;
          };
        }
      }
      fallback_ = std::make_unique<KeyedLimiter<std::string, Rule>>(std::move(o));
    };
    switch (options_.algorithm) {
      case Algorithm::TokenBucket:
        make(TokenBucketRule{});
        break;
      case Algorithm::EnvoyFixedWindow:
        make(EnvoyFixedWindowRule{});
        break;
      default:
        make(GcraRule{});
        break;
    }
  }

  // The failure policy's decision of `p`, for `failure` (BreakerOpen: the call was not sent
  // because the server's breaker is open).
  RedisDecision by_policy(const Pending& p, RedisFailure failure, bool count = true) {
    if (count) policy_decisions_.fetch_add(1, std::memory_order_relaxed);
    const Instant now = p.at.value_or(unix_now());
    const Quota& quota = p.quota;
    switch (options_.on_failure) {
      case OnRedisFailure::FailOpen:
        return {Decision(Verdict::Allowed, quota.burst(), 0, 1, Nanos::zero(), Nanos::zero()), now,
                DecisionSource::FailOpen, failure};
      case OnRedisFailure::FailClosed: {
        const Nanos wait = failure == RedisFailure::BreakerOpen ? options_.breaker_open_for
                                                                : options_.reconnect_backoff_min;
        return {
            Decision(Verdict::Denied, quota.burst(), 0, 1, std::max(wait, Nanos{1}), Nanos::zero()),
            now, DecisionSource::FailClosed, failure};
      }
      case OnRedisFailure::Fallback:
        break;
    }
    const std::string k(p.key);
    const Decision d = std::visit(
        [&](auto& limiter) {
          if constexpr (requires { limiter->try_acquire_with_quota_at(k, quota, now, p.cost); }) {
            const Quota share = share_of(quota);
            return p.write ? limiter->try_acquire_with_quota_at(k, share, now, p.cost)
                           : limiter->peek_with_quota_at(k, share, now, p.cost);
          } else {
            return p.write ? limiter->try_acquire_at(k, now, p.cost)
                           : limiter->peek_at(k, now, p.cost);
          }
        },
        fallback_);
    return {d, now, DecisionSource::Fallback, failure};
  }

  void fail(std::string message) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    const std::lock_guard lock(error_mu_);
    last_error_ = std::move(message);
  }

  DenyShard& deny_shard(std::string_view key) {
    return deny_shards_[std::hash<std::string_view>{}(key) % kDenyShards];
  }

  std::optional<RedisDecision> cached_denial(std::string_view key, std::optional<Instant> at,
                                             std::uint64_t cost, const Quota& quota,
                                             std::int64_t steady_now);
  void remember_denial(std::string_view key, const Denial& denial);

  // A decision from the script's reply, and the key's state after it.
  struct Replied {
    RedisDecision decision;
    KeyState state;
  };
  // `server_time`: the script read the instant with TIME.
  Result<Replied> from_reply(const internal::Reply& reply, std::uint64_t cost, const Quota& quota,
                             bool write, bool server_time);
  // Counts a failed call and returns the policy's decision.
  RedisDecision failed(const std::string& why, const Pending& p, RedisFailure failure) {
    fail(why);
    return by_policy(p, failure);
  }
  // `prepare` and `finish` in envoyproxy/ratelimit's keys (`RedisLimiterOptions::envoy_keys`).
  bool prepare_envoy_keys(Pending& p);
  RedisDecision finish_envoy_keys(Pending& p, const internal::Reply& reply);

  const RedisLimiterOptions options_;
  const bool cluster_;  // A Redis Cluster: multi-key scripts need their keys in one slot.
  const std::string slack_ms_ =
      std::to_string(std::chrono::ceil<std::chrono::milliseconds>(options_.ttl_slack).count());
  std::shared_ptr<internal::RedisClient> client_;  // Possibly shared with other limiters.
  std::variant<Fallback<GcraRule>, Fallback<TokenBucketRule>, Fallback<EnvoyFixedWindowRule>>
      fallback_;
  std::array<DenyShard, kDenyShards> deny_shards_;

  std::atomic<std::uint64_t> decisions_{0};
  std::atomic<std::uint64_t> redis_decisions_{0};
  std::atomic<std::uint64_t> deny_cache_hits_{0};
  std::atomic<std::uint64_t> policy_decisions_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> breaker_refusals_{0};
  std::atomic<std::uint64_t> deadline_refusals_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;  // Guarded by error_mu_.
};

std::optional<RedisDecision> RedisLimiter::Impl::cached_denial(std::string_view key,
                                                               std::optional<Instant> at,
                                                               std::uint64_t cost,
                                                               const Quota& quota,
                                                               std::int64_t steady_now) {
  DenyShard& shard = deny_shard(key);
  const std::lock_guard lock(shard.mu);
  if (shard.entries.empty()) return std::nullopt;
  const auto found = shard.entries.find(key);
  if (found == shard.entries.end()) return std::nullopt;
  const Denial& d = found->second;
  if (d.server_time == at.has_value() || !(d.quota == quota)) return std::nullopt;
  // A server-time call is decided at the latest instant the server's clock can show now: it
  // read at most `decided_at` when the request was sent, and both clocks have run since.
  const std::int64_t t = at ? internal::clamped_nanos(*at)
                            : internal::saturating_add(d.decided_at, steady_now - d.sent_at);
  const Decision decision = rule_decision(options_.algorithm, d.state, t, cost, quota);
  if (decision.allowed()) {
    shard.entries.erase(found);  // Redis decides; the next denial records a newer state.
    return std::nullopt;
  }
  return RedisDecision{decision, Instant{Nanos{t}}, DecisionSource::DenyCache};
}

void RedisLimiter::Impl::remember_denial(std::string_view key, const Denial& denial) {
  DenyShard& shard = deny_shard(key);
  const std::lock_guard lock(shard.mu);
  if (shard.entries.size() >= shard.capacity && !shard.entries.contains(key)) {
    // Full: start over. Dropping a denial only costs round trips; it never admits anything.
    shard.entries.clear();
  }
  shard.entries.insert_or_assign(std::string(key), denial);
}

Result<RedisLimiter::Impl::Replied> RedisLimiter::Impl::from_reply(const internal::Reply& reply,
                                                                   std::uint64_t cost,
                                                                   const Quota& quota, bool write,
                                                                   bool server_time) {
  const auto unexpected = [&] {
    return Error("unexpected reply from the script: " + internal::describe(reply));
  };
  if (reply.type != internal::Reply::Type::String) return unexpected();
  const Fields f = fields(reply.text);
  std::int64_t t = 0;
  if (f.size < 3 || f.size > 4 || !parse_number(f[1], t) ||
      (f[0] != "0" && f[0] != "1" && f[0] != "2")) {
    return unexpected();
  }
  KeyState state;
  if (options_.algorithm == Algorithm::Gcra) {
    // "<verdict> <seconds> <fraction> <state>": the instant comes split.
    const std::optional<std::int64_t> instant =
        f.size == 4 ? gcra_reply_instant(f[1], f[2], server_time) : std::nullopt;
    if (!instant) return unexpected();
    t = *instant;
    if (f[3] != "-" && !parse_number(f[3], state.gcra)) return unexpected();
  }
  switch (options_.algorithm) {
    case Algorithm::TokenBucket:
      if (f[2] != "-" && !parse_number(f[2], state.bucket)) return unexpected();
      break;
    case Algorithm::EnvoyFixedWindow: {
      std::int64_t start = 0;
      std::uint64_t count = 0;
      if (f.size != 4 || !parse_number(f[2], start) || !parse_number(f[3], count)) {
        return unexpected();
      }
      // The script reports the count after the call's hits, or, for a stale instant, the
      // stored window untouched.
      const std::uint64_t hits = f[0] == "2" ? 0 : std::min(cost, kMaxWindowCount);
      if (count < hits) return unexpected();
      state.window = internal::EnvoyFixedWindow::window_at(
          start, count - hits, internal::EnvoyFixedWindow::params(quota));
      break;
    }
    default:
      break;  // GCRA: above.
  }
  const Decision d = rule_decision(options_.algorithm, state, t, cost, quota);
  // The script decided whether to write; the rule's verdict must agree with it.
  const bool decides = write && cost >= 1 && cost <= quota.burst() && f[0] != "2";
  if (decides && d.allowed() != (f[0] == "1")) {
    return Error("the script and the in-process rule disagree at " + std::to_string(t) +
                 " on reply " + internal::quoted(reply.text));
  }
  if (options_.algorithm == Algorithm::EnvoyFixedWindow && write && f[0] != "2") {
    state.window.count += std::min(cost, kMaxWindowCount);  // As stored: the hits are counted.
  }
  return Replied{RedisDecision{d, Instant{Nanos{t}}, DecisionSource::Redis}, state};
}

bool RedisLimiter::Impl::prepare(Pending& p, SteadyTime deadline) {
  decisions_.fetch_add(1, std::memory_order_relaxed);
  // envoyproxy/ratelimit's keys name the window on this host's clock.
  if (options_.envoy_keys && !p.at) p.at = unix_now();
  p.sent = std::chrono::steady_clock::now();
  p.steady_now = p.sent.time_since_epoch().count();
  if (p.write && options_.deny_cache_keys != 0) {
    if (auto hit = cached_denial(p.key, p.at, p.cost, p.quota, p.steady_now)) {
      deny_cache_hits_.fetch_add(1, std::memory_order_relaxed);
      p.decided = *hit;
      return false;
    }
  }
  if (deadline <= p.sent) {
    deadline_refusals_.fetch_add(1, std::memory_order_relaxed);
    p.decided = by_policy(p, RedisFailure::OutOfTime);
    return false;
  }
  p.item = internal::BatchItem{};
  if (options_.envoy_keys) return prepare_envoy_keys(p);
  // The script's arguments: the instant, then the rule's parameters.
  const Quota& quota = p.quota;
  const bool decides = p.cost >= 1 && p.cost <= quota.burst();
  const std::string_view write_flag = p.write && decides ? "1" : "0";
  if (options_.algorithm == Algorithm::Gcra) {
    // Each count of nanoseconds as seconds and nanoseconds (see the script).
    const auto split = [&](std::int64_t n) {
      const auto [seconds, nanos] = split_nanos(n);
      p.args.add_number(seconds);
      p.args.add_number(nanos);
    };
    if (p.at) {
      split(internal::clamped_nanos(*p.at));
    } else {
      p.args.add("");
      p.args.add("");
    }
    const auto params = internal::Gcra::params(quota);
    split(params.window);
    split(decides ? static_cast<std::int64_t>(internal::Gcra::charge(p.cost, params)) : 0);
    p.args.add(write_flag);
    p.args.add(slack_ms_);
  } else if (p.at) {
    p.args.add_number(internal::clamped_nanos(*p.at));
  } else {
    p.args.add("");
  }
  switch (options_.algorithm) {
    case Algorithm::Gcra:
      break;  // Above.
    case Algorithm::TokenBucket: {
      const auto params = internal::TokenBucket::params(quota);
      p.args.add_number(params.rate_per_ns);
      p.args.add_number(params.ns_per_token);
      p.args.add_number(params.burst);
      p.args.add_number(decides ? p.cost : 0);
      p.args.add(write_flag);
      p.args.add(slack_ms_);
      break;
    }
    case Algorithm::FixedWindow:
    case Algorithm::SlidingLog:
    case Algorithm::SlidingCounter:
      break;  // Refused by `create`.
    case Algorithm::EnvoyFixedWindow: {
      const Result<WindowPeriod> period = window_period(quota);
      if (!period) {
        p.decided = failed(period.error().message(), p, RedisFailure::ErrorReply);
        return false;
      }
      // envoyproxy/ratelimit counts every hit, a cost above the limit included.
      p.args.add_number(period->seconds);
      p.args.add_number(period->nanos);
      p.args.add_number(quota.count());
      p.args.add_number(std::min(p.cost, kMaxWindowCount));
      p.args.add(p.write ? "1" : "0");
      p.args.add(slack_ms_);
      break;
    }
  }
  p.stored.assign(options_.prefix).append(p.key);
  p.item.key = p.stored;
  p.item.script = &script_of(options_.algorithm);
  p.item.args = p.args.span();
  return true;
}

bool RedisLimiter::Impl::prepare_envoy_keys(Pending& p) {
  const Quota& quota = p.quota;
  const std::int64_t period = quota.period().count();
  if (period % kSecond != 0 || quota.count() > kMaxWindowCount) {
    p.decided = failed("quota " + internal::quoted(quota.to_string()) +
                           ": envoyproxy/ratelimit's keys need a period of whole seconds and a "
                           "count of at most 2^53",
                       p, RedisFailure::ErrorReply);
    return false;
  }
  const std::int64_t t = internal::clamped_nanos(*p.at);
  const std::int64_t seconds = period / kSecond;
  p.window_start = internal::floor_div(internal::floor_div(t, kSecond), seconds) * seconds;
  p.stored.assign(options_.prefix).append(p.key).append(std::to_string(p.window_start));
  p.hits = p.write ? std::min(p.cost, kMaxWindowCount) : 0;
  if (p.write) {
    // Created with its expiry, then counted: every hit, as upstream counts (its EXPIRE after
    // INCRBY, on the same key, keeps it alive as long).
    const std::string ttl = std::to_string(
        seconds + std::chrono::ceil<std::chrono::seconds>(options_.ttl_slack).count());
    p.commands[0].clear();
    p.commands[1].clear();
    internal::append_command(p.commands[0], {"SET", p.stored, "0", "EX", ttl, "NX"});
    internal::append_command(p.commands[1], {"INCRBY", p.stored, std::to_string(p.hits)});
    p.item.commands = std::span(p.commands.data(), 2);
  } else {
    p.commands[0].clear();
    internal::append_command(p.commands[0], {"GET", p.stored});
    p.item.commands = std::span(p.commands.data(), 1);
  }
  p.item.key = p.stored;
  return true;
}

RedisDecision RedisLimiter::Impl::finish(Pending& p) {
  std::string why;
  if (const RedisFailure failure = outcome_failure(p.item.outcome, why);
      failure != RedisFailure::None) {
    if (failure != RedisFailure::BreakerOpen) return failed(why, p, failure);
    breaker_refusals_.fetch_add(1, std::memory_order_relaxed);
    return by_policy(p, failure);
  }
  const internal::Reply& reply = *p.item.outcome.reply;
  if (options_.envoy_keys) return finish_envoy_keys(p, reply);
  Result<Replied> replied = from_reply(reply, p.cost, p.quota, p.write, !p.at.has_value());
  if (!replied) return failed(replied.error().message(), p, RedisFailure::ErrorReply);
  redis_decisions_.fetch_add(1, std::memory_order_relaxed);
  const RedisDecision& decided = replied->decision;
  if (p.write && options_.deny_cache_keys != 0 && decided.decision.verdict() == Verdict::Denied) {
    remember_denial(p.key, Denial{replied->state, p.quota, !p.at.has_value(),
                                  decided.at.time_since_epoch().count(), p.steady_now});
  }
  return decided;
}

RedisDecision RedisLimiter::Impl::finish_envoy_keys(Pending& p, const internal::Reply& reply) {
  // INCRBY's count, or GET's: a number as text, or nil for a window nothing has counted in.
  std::uint64_t after = 0;
  bool number = reply.type == internal::Reply::Type::Nil;
  if (reply.type == internal::Reply::Type::Integer && reply.integer >= 0) {
    after = static_cast<std::uint64_t>(reply.integer);
    number = true;
  } else if (reply.type == internal::Reply::Type::String) {
    number = parse_number(reply.text, after);
  }
  if (!number || after < p.hits) {
    return failed("unexpected reply to INCRBY or GET of " + internal::quoted(p.stored) + ": " +
                      internal::describe(reply),
                  p, RedisFailure::ErrorReply);
  }
  const std::int64_t t = internal::clamped_nanos(*p.at);
  const auto params = internal::EnvoyFixedWindow::params(p.quota);
  KeyState state;
  state.window =
      internal::EnvoyFixedWindow::window_at(p.window_start * kSecond, after - p.hits, params);
  const Decision d = rule_decision(Algorithm::EnvoyFixedWindow, state, t, p.cost, p.quota);
  redis_decisions_.fetch_add(1, std::memory_order_relaxed);
  if (p.write && options_.deny_cache_keys != 0 && d.verdict() == Verdict::Denied) {
    state.window.count = after;
    remember_denial(p.key, Denial{state, p.quota, false, t, p.steady_now});
  }
  return RedisDecision{d, *p.at, DecisionSource::Redis};
}

Result<RedisAllOrNone> RedisLimiter::Impl::acquire_all(std::span<RedisCall> calls,
                                                       std::optional<Instant> at,
                                                       SteadyTime deadline) {
  constexpr std::size_t kMaxCalls = 16;
  if (calls.empty() || calls.size() > kMaxCalls) {
    return Error("acquire_all takes 1 to " + std::to_string(kMaxCalls) + " calls (got " +
                 std::to_string(calls.size()) + ")");
  }
  const auto which = [&](std::size_t i) {
    return "acquire_all: call " + std::to_string(i) + " (key " + internal::quoted(calls[i].key) +
           ")";
  };
  std::vector<Impl*> impls;
  std::vector<std::string> stored;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const RedisCall& call = calls[i];
    if (call.limiter == nullptr) return Error(which(i) + " has no limiter");
    if (call.peek) return Error(which(i) + " is a peek: all or none takes permits");
    Impl& impl = *call.limiter->impl_;
    if (impl.options_.algorithm != Algorithm::Gcra || impl.options_.envoy_keys) {
      return Error(which(i) + ": its limiter runs " +
                   std::string(to_string(impl.options_.algorithm)) +
                   (impl.options_.envoy_keys ? " in envoyproxy/ratelimit's keys" : "") +
                   "; all or none runs on gcra");
    }
    if (!impls.empty() && impl.client_ != impls[0]->client_) {
      return Error(which(i) +
                   ": its limiter does not share call 0's connections (make it with "
                   "RedisLimiter::create(options, share_with))");
    }
    impls.push_back(&impl);
    stored.push_back(impl.options_.prefix + std::string(call.key));
  }
  if (impls[0]->cluster_) {
    const std::uint16_t slot = internal::key_slot(stored[0]);
    for (std::size_t i = 1; i < stored.size(); ++i) {
      if (const std::uint16_t other = internal::key_slot(stored[i]); other != slot) {
        return Error(which(i) + ": on a Redis Cluster every key must be in one slot, but " +
                     internal::quoted(stored[i]) + " is in slot " + std::to_string(other) +
                     " and " + internal::quoted(stored[0]) + " in slot " + std::to_string(slot) +
                     "; give every key one hash tag, such as \"{fleet}\"");
      }
    }
  }
  std::vector<Quota> quotas;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    quotas.push_back(calls[i].quota != nullptr ? *calls[i].quota
                                               : impls[i]->quota_of(calls[i].key));
    impls[i]->decisions_.fetch_add(1, std::memory_order_relaxed);
  }

  // Decided by the limiters' failure policies, all or none as well (see the header).
  const auto by_policies = [&](RedisFailure failure, const std::string& why) {
    std::deque<Pending> pending;
    for (std::size_t i = 0; i < calls.size(); ++i) {
      Impl& impl = *impls[i];
      switch (failure) {
        case RedisFailure::BreakerOpen:
          impl.breaker_refusals_.fetch_add(1, std::memory_order_relaxed);
          break;
        case RedisFailure::OutOfTime:
          impl.deadline_refusals_.fetch_add(1, std::memory_order_relaxed);
          break;
        default:
          impl.fail(why);
          break;
      }
      impl.policy_decisions_.fetch_add(1, std::memory_order_relaxed);
      pending.emplace_back(calls[i].key, at, calls[i].cost, false, quotas[i]);
    }
    RedisAllOrNone result;
    for (std::size_t i = 0; i < calls.size() && result.allowed(); ++i) {
      calls[i].decision = impls[i]->by_policy(pending[i], failure, false);
      if (!calls[i].decision.allowed()) result.refused = i;
    }
    for (std::size_t i = 0; i < calls.size() && result.allowed(); ++i) {
      pending[i].write = true;
      calls[i].decision = impls[i]->by_policy(pending[i], failure, false);
      if (!calls[i].decision.allowed()) result.refused = i;  // Taken in between: see the header.
    }
    for (std::size_t i = 0; i < calls.size() && !result.allowed(); ++i) {
      if (i == result.refused) continue;
      pending[i].cost = 0;
      pending[i].write = false;
      calls[i].decision = impls[i]->by_policy(pending[i], failure, false);
    }
    return result;
  };

  const SteadyTime sent = std::chrono::steady_clock::now();
  if (deadline <= sent) return by_policies(RedisFailure::OutOfTime, "");

  // The script's arguments (see scripts.cc): the instant, the TTL slack, then each key's window
  // and charge, as seconds and nanoseconds.
  std::vector<std::string> args;
  const auto split = [&](std::int64_t n) {
    const auto [seconds, nanos] = split_nanos(n);
    args.push_back(std::to_string(seconds));
    args.push_back(std::to_string(nanos));
  };
  if (at) {
    split(internal::clamped_nanos(*at));
  } else {
    args.emplace_back();
    args.emplace_back();
  }
  Nanos slack = Nanos::zero();
  Nanos timeout = Nanos::max();
  for (const Impl* impl : impls) {
    slack = std::max(slack, impl->options_.ttl_slack);
    timeout = std::min(timeout, impl->options_.command_timeout);
  }
  args.push_back(std::to_string(std::chrono::ceil<std::chrono::milliseconds>(slack).count()));
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto params = internal::Gcra::params(quotas[i]);
    const std::uint64_t cost = calls[i].cost;
    split(params.window);
    // A cost outside [1, burst] is never admitted: a charge beyond the window says so.
    split(cost == 0              ? 0
          : cost <= params.burst ? static_cast<std::int64_t>(internal::Gcra::charge(cost, params))
                                 : params.window + kSecond);
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  std::vector<std::string_view> other_keys(stored.begin() + 1, stored.end());
  internal::BatchItem item;
  item.key = stored[0];
  item.other_keys = other_keys;
  item.script = &internal::gcra_all_script();
  item.args = views;
  internal::BatchItem* items = &item;
  impls[0]->client_->run_batch(std::span(&items, 1), impls[0]->hard_deadline(sent, deadline),
                               timeout);

  std::string why;
  if (const RedisFailure failure = outcome_failure(item.outcome, why);
      failure != RedisFailure::None) {
    return by_policies(failure, why);
  }
  const internal::Reply& reply = *item.outcome.reply;

  // "<refused> <seconds> <fraction> <state>...": the first key that refused (1-based; 0: none),
  // the instant as for the one-key script, and each key's state before.
  const auto unexpected = [&] {
    return by_policies(RedisFailure::ErrorReply, "unexpected reply from the all-or-none script: " +
                                                     internal::describe(reply));
  };
  if (reply.type != internal::Reply::Type::String) return unexpected();
  std::vector<std::string_view> f;
  for (std::string_view rest = reply.text; !rest.empty();) {
    const std::size_t space = rest.find(' ');
    f.push_back(rest.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
  }
  std::size_t refused = 0;
  const std::optional<std::int64_t> instant =
      f.size() == 3 + calls.size() ? gcra_reply_instant(f[1], f[2], !at) : std::nullopt;
  if (!instant || !parse_number(f[0], refused) || refused > calls.size()) return unexpected();
  const std::int64_t t = *instant;
  std::vector<KeyState> states(calls.size());
  std::size_t first_refusing = 0;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (f[3 + i] != "-" && !parse_number(f[3 + i], states[i].gcra)) return unexpected();
    const Decision d = rule_decision(Algorithm::Gcra, states[i], t, calls[i].cost, quotas[i]);
    if (!d.allowed() && first_refusing == 0) first_refusing = i + 1;
    calls[i].decision = {d, Instant{Nanos{t}}, DecisionSource::Redis};
  }
  if (first_refusing != refused) {
    return by_policies(RedisFailure::ErrorReply,
                       "the all-or-none script and the in-process rule disagree at " +
                           std::to_string(t) + " on reply " + internal::quoted(reply.text));
  }
  RedisAllOrNone result;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    impls[i]->redis_decisions_.fetch_add(1, std::memory_order_relaxed);
    if (refused != 0 && i + 1 != refused) {
      calls[i].decision.decision = rule_decision(Algorithm::Gcra, states[i], t, 0, quotas[i]);
    }
  }
  if (refused != 0) result.refused = refused - 1;
  return result;
}

RedisDecision RedisLimiter::Impl::decide(std::string_view key, std::optional<Instant> at,
                                         std::uint64_t cost, bool write, SteadyTime deadline,
                                         const Quota* given) {
  Pending p(key, at, cost, write, given != nullptr ? *given : quota_of(key));
  if (!prepare(p, deadline)) return *p.decided;
  internal::BatchItem* item = &p.item;
  client_->run_batch(std::span(&item, 1), hard_deadline(p.sent, deadline),
                     options_.command_timeout);
  return finish(p);
}

namespace {

// Checks the options that are the limiter's own (not its connections').
Result<void> check_limiter_options(const RedisLimiterOptions& options) {
  if (!(options.fallback_share > 0.0 && options.fallback_share <= 1.0)) {
    return Error("fallback_share must be in (0, 1] (got " + std::to_string(options.fallback_share) +
                 ")");
  }
  if (options.command_timeout <= Nanos::zero() || options.connect_timeout <= Nanos::zero()) {
    return Error("connect_timeout and command_timeout must be positive");
  }
  if (options.ttl_slack < Nanos::zero() || options.ttl_slack > kMaxTtlSlack) {
    return Error("ttl_slack must be from 0 to 10 years (got " +
                 std::to_string(options.ttl_slack.count()) + " ns)");
  }
  if (!runs_on_redis(options.algorithm)) {
    return Error("algorithm " + internal::quoted(to_string(options.algorithm)) +
                 ": not decided on Redis (gcra, token-bucket and envoy-fixed-window are)");
  }
  if (options.algorithm == Algorithm::EnvoyFixedWindow) {
    if (Result<WindowPeriod> p = window_period(options.default_quota); !p) return p.error();
  }
  if (options.envoy_keys) {
    if (options.algorithm != Algorithm::EnvoyFixedWindow) {
      return Error("envoy_keys is for algorithm envoy-fixed-window (got " +
                   internal::quoted(to_string(options.algorithm)) + ")");
    }
    if (options.default_quota.period().count() % kSecond != 0) {
      return Error("quota " + internal::quoted(options.default_quota.to_string()) +
                   ": envoyproxy/ratelimit's keys need a period of whole seconds");
    }
  }
  return {};
}

// Describes the first connection option in which `mine` differs from `shared`'s, with both
// values; empty if none does.
std::string first_connection_difference(const RedisLimiterOptions& mine,
                                        const RedisLimiterOptions& shared) {
  const auto differs = [](const char* name, const std::string& a, const std::string& b) {
    return name + std::string(" ") + a + " differs from the shared limiter's " + b;
  };
  const auto ns = [](Nanos d) { return std::to_string(d.count()) + " ns"; };
  if (mine.url != shared.url) {
    return differs("url", internal::quoted_url(mine.url), internal::quoted_url(shared.url));
  }
  if (mine.password != shared.password) {
    return std::string("password differs from the shared limiter's");
  }
  if (mine.tls_ca_file != shared.tls_ca_file || mine.tls_cert_file != shared.tls_cert_file ||
      mine.tls_key_file != shared.tls_key_file ||
      mine.tls_verify_hostname != shared.tls_verify_hostname) {
    return std::string("the TLS options differ from the shared limiter's");
  }
  if (mine.connections != shared.connections) {
    return differs("connections", std::to_string(mine.connections),
                   std::to_string(shared.connections));
  }
  if (mine.connect_timeout != shared.connect_timeout) {
    return differs("connect_timeout", ns(mine.connect_timeout), ns(shared.connect_timeout));
  }
  if (mine.reconnect_backoff_min != shared.reconnect_backoff_min) {
    return differs("reconnect_backoff_min", ns(mine.reconnect_backoff_min),
                   ns(shared.reconnect_backoff_min));
  }
  if (mine.reconnect_backoff_max != shared.reconnect_backoff_max) {
    return differs("reconnect_backoff_max", ns(mine.reconnect_backoff_max),
                   ns(shared.reconnect_backoff_max));
  }
  if (mine.breaker_failures != shared.breaker_failures) {
    return differs("breaker_failures", std::to_string(mine.breaker_failures),
                   std::to_string(shared.breaker_failures));
  }
  if (mine.breaker_open_for != shared.breaker_open_for) {
    return differs("breaker_open_for", ns(mine.breaker_open_for), ns(shared.breaker_open_for));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<RedisLimiter>> RedisLimiter::create(RedisLimiterOptions options) {
  Result<internal::RedisUrl> url = internal::parse_redis_url(options.url);
  if (!url) return url.error();
  if (!options.password.empty()) {
    if (!url->password.empty()) {
      return Error("redis URL " + internal::quoted_url(options.url) +
                   " has a password, and so does the password option: give it once");
    }
    url->password = options.password;
  }
  if (Result<void> ok = check_limiter_options(options); !ok) return ok.error();
  if (!url->tls && (!options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
                    !options.tls_key_file.empty())) {
    return Error("redis URL " + internal::quoted_url(options.url) +
                 ": TLS files are given, but the URL is not rediss://");
  }
  Result<std::shared_ptr<internal::RedisClient>> client = Impl::make_client(options, *url);
  if (!client) return client.error();
  return std::unique_ptr<RedisLimiter>(
      new RedisLimiter(std::make_unique<Impl>(std::move(options), std::move(*client))));
}

Result<std::unique_ptr<RedisLimiter>> RedisLimiter::create(RedisLimiterOptions options,
                                                           const RedisLimiter& share_with) {
  if (std::string differs = first_connection_difference(options, share_with.options());
      !differs.empty()) {
    return Error(differs +
                 ": limiters share connections only with the same url and connection "
                 "options");
  }
  if (Result<void> ok = check_limiter_options(options); !ok) return ok.error();
  return std::unique_ptr<RedisLimiter>(
      new RedisLimiter(std::make_unique<Impl>(std::move(options), share_with.impl_->client())));
}

RedisLimiter::RedisLimiter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisLimiter::~RedisLimiter() = default;

RedisDecision RedisLimiter::try_acquire(std::string_view key, std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, true);
}

RedisDecision RedisLimiter::try_acquire_at(std::string_view key, Instant now, std::uint64_t cost) {
  return impl_->decide(key, now, cost, true);
}

RedisDecision RedisLimiter::peek(std::string_view key, std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, false);
}

RedisDecision RedisLimiter::peek_at(std::string_view key, Instant now, std::uint64_t cost) {
  return impl_->decide(key, now, cost, false);
}

RedisDecision RedisLimiter::try_acquire_before(std::string_view key, SteadyTime deadline,
                                               std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, true, deadline);
}

RedisDecision RedisLimiter::peek_before(std::string_view key, SteadyTime deadline,
                                        std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, false, deadline);
}

RedisDecision RedisLimiter::try_acquire_with_quota_before(std::string_view key, const Quota& quota,
                                                          SteadyTime deadline, std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, true, deadline, &quota);
}

RedisDecision RedisLimiter::peek_with_quota_before(std::string_view key, const Quota& quota,
                                                   SteadyTime deadline, std::uint64_t cost) {
  return impl_->decide(key, std::nullopt, cost, false, deadline, &quota);
}

void RedisLimiter::decide_all(std::span<RedisCall> calls, SteadyTime deadline) {
  // Each call made ready to send, or decided at once (the deny cache, a passed deadline).
  struct Sending {
    Impl* impl;
    Impl::Pending* pending;
    RedisCall* call;
    bool sent;
  };
  std::deque<Impl::Pending> pending;
  std::vector<Sending> sending;
  for (RedisCall& call : calls) {
    Impl& impl = *call.limiter->impl_;
    Impl::Pending& p =
        pending.emplace_back(call.key, std::nullopt, call.cost, !call.peek,
                             call.quota != nullptr ? *call.quota : impl.quota_of(call.key));
    if (impl.prepare(p, deadline)) {
      sending.push_back({&impl, &p, &call, false});
    } else {
      call.decision = *p.decided;
    }
  }
  // One batch per set of connections (limiters made with `share_with` share one): the calls to
  // one server in one write.
  std::vector<internal::BatchItem*> items;
  for (std::size_t i = 0; i < sending.size(); ++i) {
    if (sending[i].sent) continue;
    internal::RedisClient* client = sending[i].impl->client().get();
    items.clear();
    SteadyTime until = SteadyTime::max();
    Nanos timeout = Nanos::max();
    for (std::size_t j = i; j < sending.size(); ++j) {
      Sending& s = sending[j];
      if (s.sent || s.impl->client().get() != client) continue;
      s.sent = true;
      items.push_back(&s.pending->item);
      until = std::min(until, s.impl->hard_deadline(s.pending->sent, deadline));
      timeout = std::min(timeout, s.impl->options().command_timeout);
    }
    client->run_batch(items, until, timeout);
  }
  for (Sending& s : sending) s.call->decision = s.impl->finish(*s.pending);
}

Result<RedisAllOrNone> RedisLimiter::acquire_all(std::span<RedisCall> calls, SteadyTime deadline) {
  return Impl::acquire_all(calls, std::nullopt, deadline);
}

Result<RedisAllOrNone> RedisLimiter::acquire_all_at(std::span<RedisCall> calls, Instant now,
                                                    SteadyTime deadline) {
  return Impl::acquire_all(calls, now, deadline);
}

Result<void> RedisLimiter::connect(Nanos timeout) { return impl_->connect(timeout); }

Quota RedisLimiter::quota_of(std::string_view key) const { return impl_->quota_of(key); }

const RedisLimiterOptions& RedisLimiter::options() const noexcept { return impl_->options(); }

RedisLimiterStats RedisLimiter::stats() const { return impl_->stats(); }

std::string RedisLimiter::last_error() const { return impl_->last_error(); }

}  // namespace floodgate
