// `KeyedLimiter`: one limit per key (a user, an API key, an IP address) in bounded memory, with
// eviction that never resets a limited key unless told to.
//
// Thread-safe with `Threads::Many` (the default): any number of threads may call any member at
// once. Keys are spread over shards by a seeded hash, and a call holds its shard's spin lock
// while it decides; calls on known keys never allocate. With `Threads::One`, one thread at a
// time and no lock.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "floodgate/core/clock.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/internal/check.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/keyed/internal/key_hash.h"
#include "floodgate/keyed/internal/slot_table.h"
#include "floodgate/keyed/internal/spin_lock.h"
#include "floodgate/limiters/bucket_limiter.h"
#include "floodgate/limiters/rate_limiter.h"
#include "floodgate/limiters/rules.h"

namespace floodgate {

// What a full `KeyedLimiter` does with a new key once no tracked key can be dropped without
// changing a decision.
enum class OverflowPolicy : std::uint8_t {
  // Fail closed: the new key's call is answered `TooManyKeys`, with `retry_after()` the time
  // until some tracked key's bucket is full again (and can be dropped). Nothing is reset. The
  // default.
  RejectNewKeys,
  // Fail open: the call is decided as for a fresh key and admitted without keeping state, so an
  // untracked key is not limited until room frees up. Nothing tracked is reset.
  AdmitUntracked,
  // New keys share one overflow bucket under the default quota: together they get one key's
  // worth of capacity until room frees up. Nothing tracked is reset.
  SharedOverflow,
  // Evict an approximately least recently used key (a CLOCK sweep over the shard) to make room.
  // The only policy that can reset a limited key: an evicted key comes back with a full bucket.
  // Keys with their own quota (`set_quota_at`) are never evicted.
  EvictLeastRecentlyUsed,
};

// Returns "RejectNewKeys", "AdmitUntracked", "SharedOverflow" or "EvictLeastRecentlyUsed".
constexpr std::string_view to_string(OverflowPolicy policy) noexcept {
  switch (policy) {
    case OverflowPolicy::RejectNewKeys:
      return "RejectNewKeys";
    case OverflowPolicy::AdmitUntracked:
      return "AdmitUntracked";
    case OverflowPolicy::SharedOverflow:
      return "SharedOverflow";
    case OverflowPolicy::EvictLeastRecentlyUsed:
      return "EvictLeastRecentlyUsed";
  }
  return "?";
}

// How a `KeyedLimiter` is built.
template <class Key = std::string>
struct KeyedLimiterOptions {
  // The quota of every key the resolver does not place and that has no quota of its own.
  Quota default_quota = Quota::per_second(10);
  // The most keys with state at once, exactly, keys with their own quota included. Memory is
  // bounded by it: 32 x 4/3 bytes of table per key of room once full, plus the bytes of keys
  // longer than 16 (`KeyedLimiterStats::bytes` counts both).
  std::size_t max_keys = 1'000'000;
  OverflowPolicy overflow = OverflowPolicy::RejectNewKeys;
  // Tiers: called when a key's state is created, and by `peek_at` and `quota_of` for a key without
  // state, outside any lock, to choose the key's quota (nothing: the default). At most 255
  // distinct quotas besides the default; a key whose quota would be the 256th gets the default
  // and is counted in `KeyedLimiterStats::tier_overflows`.
  std::function<std::optional<Quota>(typename internal::KeyBytes<Key>::View key)> resolver =
      nullptr;
  // Shards, rounded up to a power of two, and at most `max_keys`; 0 chooses one per 4,096 keys of
  // room, at least 1 and at most 64. The room is split evenly, so one shard can be full (and the
  // overflow policy apply to its keys) while others still have room.
  std::size_t shards = 0;
  // The seed of the key hash; 0 (the default) draws a random one per limiter, so that keys chosen
  // to collide in one process do not collide in another. Fix it only to make a test's layout
  // reproducible: a seed an attacker knows lets them build long probe runs.
  std::uint64_t hash_seed = 0;
};

// Counters, readable while the limiter runs. Each is exact; together they are not a snapshot.
struct KeyedLimiterStats {
  std::uint64_t keys = 0;                // Keys with state now.
  std::uint64_t lossless_drops = 0;      // Keys dropped because their bucket was full.
  std::uint64_t forced_evictions = 0;    // Keys evicted by EvictLeastRecentlyUsed.
  std::uint64_t overflow_decisions = 0;  // Calls for new keys decided by the overflow policy.
  std::uint64_t too_many_keys = 0;       // Calls answered `Verdict::TooManyKeys`.
  std::uint64_t tier_overflows = 0;      // Keys given the default quota: too many distinct quotas.
  std::uint64_t bytes = 0;               // Slot tables and out-of-line keys.
};

// One limit per key: keys of type `Key`, each with the state of a single-key limiter of `Rule`
// and decisions equal to that limiter's for the key's quota: `GcraRule` (the default) and
// `TokenBucketRule` (`BucketLimiter`), `FixedWindowRule`, `SlidingLogRule`, `SlidingCounterRule`,
// or `EnvoyFixedWindowRule` (envoyproxy/ratelimit's window, which counts denied hits too).
// `with_rule` (limiters/rules.h) picks the rule of an `Algorithm` at run time. `C` is the clock
// the forms without `_at` read.
//
//   floodgate::KeyedLimiter<> per_user{{.default_quota = floodgate::Quota::per_second(10),
//                                       .max_keys = 100'000}};
//   if (!per_user.try_acquire(user_id).allowed()) reply_429();
//
//   // Per IPv4 address, token buckets:
//   floodgate::KeyedLimiter<std::uint32_t, floodgate::TokenBucketRule> per_ip{{}};
//
// Keys are `std::string` (looked up by `std::string_view`, nothing allocated for a known key) or
// fixed-size values of at most 16 bytes whose bytes are their identity: integers,
// `std::array<std::uint8_t, 4>` or `<..., 16>` for IP addresses.
//
// Memory is bounded by `max_keys`. When a shard is full and a new key needs state:
//   1. keys whose state is full at `now` (a full bucket, windows with nothing counted that a later
//      call can see) are dropped: their state is a fresh key's, so every later call at an instant
//      no earlier than `now` decides as it would have with the key kept.
//   2. If none can be dropped, the `OverflowPolicy` decides; only `EvictLeastRecentlyUsed` can
//      reset a limited key.
// Nothing runs in the background; `sweep(now)` drops every droppable key at once. A key of the
// sliding log also holds its log on the heap (at most 2 x its quota's count admissions, 24 bytes
// each), counted in `KeyedLimiterStats::bytes`.
template <class Key = std::string, class Rule = GcraRule, Clock C = SteadyClock,
          Threads T = Threads::Many>
class KeyedLimiter {
  using Impl = typename Rule::Impl;
  // GCRA and the token bucket have a burst; the window rules read only count and period.
  static constexpr bool kHasBurst = requires(typename Impl::Params p) { Impl::burst(p); };
  static constexpr bool kHeapState = requires(typename Impl::State s) { Impl::release(s); };
  static constexpr bool kChangesQuota =
      requires(typename Impl::State s, Instant now, typename Impl::Params p) {
    Impl::change_quota(s, now, p, p, OnQuotaChange::KeepRemaining);
  };

 public:
  // The options this limiter is made with.
  using Options = KeyedLimiterOptions<Key>;
  // What the calls take as a key without copying it: `std::string_view` for `std::string`, a
  // const reference for fixed-size keys (integers, enums, byte arrays).
  using KeyView = typename internal::KeyBytes<Key>::View;

  // Creates an empty limiter. Aborts if `max_keys` is 0.
  explicit KeyedLimiter(Options options, C clock = C{})
      : options_(std::move(options)), clock_(std::move(clock)) {
    FLOODGATE_CHECK(options_.max_keys >= 1, "KeyedLimiter: max_keys must be at least 1");
    // No more shards than keys, so that every shard has room for one; the room adds up to
    // exactly `max_keys`.
    const std::size_t wanted = options_.shards != 0
                                   ? options_.shards
                                   : std::min<std::size_t>(64, options_.max_keys / 4096);
    // Clamped before rounding up: std::bit_ceil of a count above 2^63 is undefined.
    const std::size_t shards =
        std::bit_ceil(std::clamp<std::size_t>(wanted, 1, std::bit_floor(options_.max_keys)));
    shard_bits_ = static_cast<unsigned>(std::countr_zero(shards));
    shards_ = std::make_unique<Shard[]>(shards);
    for (std::size_t i = 0; i < shards; ++i) {
      shards_[i].capacity = options_.max_keys / shards + (i < options_.max_keys % shards ? 1 : 0);
    }
    if constexpr (!kHasBurst) {
      FLOODGATE_CHECK(options_.default_quota.burst() == options_.default_quota.count(),
                      "KeyedLimiter: a window rule's default quota must have its burst equal to "
                      "its count");
    }
    tiers_[0] = Impl::params(options_.default_quota);
    tier_quotas_[0] = options_.default_quota;
  }

  KeyedLimiter(const KeyedLimiter&) = delete;
  KeyedLimiter& operator=(const KeyedLimiter&) = delete;
  ~KeyedLimiter() { internal::release_state<Impl>(overflow_state_); }

  // Admits `cost` permits for `key` at the clock's current instant if they are available.
  Decision try_acquire(KeyView key, std::uint64_t cost = 1) {
    return try_acquire_at(key, clock_.now(), cost);
  }

  // Admits `cost` permits for `key` at `now` if they are available: the decision the rule's
  // limiter would make for the key's quota, or, for a new key when the limiter is full, the
  // overflow policy's (`TooManyKeys` under `RejectNewKeys`).
  Decision try_acquire_at(KeyView key, Instant now, std::uint64_t cost = 1) {
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    {
      const Lock lock(shard.flag);
      if (Slot* slot = shard.find(k)) return decide(shard, *slot, tiers_[slot->tier], now, cost);
    }
    // A new key: choose its quota outside the lock (the resolver is the caller's code).
    const std::uint8_t tier = tier_for(key);
    const Lock lock(shard.flag);
    if (Slot* slot = shard.find(k)) {
      return decide(shard, *slot, tiers_[slot->tier], now, cost);  // Raced in.
    }
    return create(shard, k, tier, tiers_[tier], now, cost);
  }

  // Decides as `try_acquire_at` does, under `quota` for this call instead of a tier: for limits
  // that come with each request (Envoy's per-descriptor `limit`), of which there may be more than
  // the 255 that tiers hold. Offered for rules whose state says by itself when it is full
  // (`GcraRule`, `EnvoyFixedWindowRule`). A key is meant to keep one quota: put the quota in the
  // key, as a different quota reads the state under rules it was not written under.
  Decision try_acquire_with_quota_at(KeyView key, const Quota& quota, Instant now,
                                     std::uint64_t cost = 1) requires internal::kSelfTimed<Impl> {
    const typename Impl::Params params = Impl::params(quota);
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    const Lock lock(shard.flag);
    if (Slot* slot = shard.find(k)) return decide(shard, *slot, params, now, cost);
    return create(shard, k, 0, params, now, cost);
  }

  // Reports what `try_acquire_with_quota_at(key, quota, now, cost)` would decide, consuming
  // nothing and creating nothing.
  Decision peek_with_quota_at(KeyView key, const Quota& quota, Instant now,
                              std::uint64_t cost = 1) const requires internal::kSelfTimed<Impl> {
    const typename Impl::Params params = Impl::params(quota);
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    const Lock lock(shard.flag);
    const Slot* slot = shard.find(k);
    return internal::peek_state<Impl>(slot != nullptr ? slot->state : Impl::kFull, now, cost,
                                      params);
  }

  // Reports what `try_acquire(key, cost)` would decide at the clock's current instant.
  Decision peek(KeyView key, std::uint64_t cost = 1) const {
    return peek_at(key, clock_.now(), cost);
  }

  // Reports what `try_acquire_at(key, now, cost)` would decide for a key with state, or for a
  // fresh key, consuming nothing and creating nothing (not even a tier for the resolver's
  // quota). A new key that would meet a full limiter is answered as a fresh key.
  Decision peek_at(KeyView key, Instant now, std::uint64_t cost = 1) const {
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    {
      const Lock lock(shard.flag);
      if (const Slot* slot = shard.find(k)) {
        return internal::peek_state<Impl>(slot->state, now, cost, tiers_[slot->tier]);
      }
    }
    return internal::peek_state<Impl>(Impl::kFull, now, cost, Impl::params(resolve(key)));
  }

  // Returns the quota `key` is limited by: its own (`set_quota_at`), the one its state was
  // created with, or, for a key without state, the one it would get now. Calls the resolver
  // for a key without state.
  Quota quota_of(KeyView key) const {
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    {
      const Lock lock(shard.flag);
      if (const Slot* slot = shard.find(k)) return *tier_quotas_[slot->tier];
    }
    return resolve(key);
  }

  // Gives `key` its own quota from the clock's current instant; see `set_quota_at`.
  // Offered for `GcraRule` and `TokenBucketRule`, as by their single-key limiters.
  Result<void> set_quota(KeyView key, Quota quota) requires kChangesQuota {
    return set_quota_at(key, quota, clock_.now());
  }

  // Gives `key` its own quota from `now` on: its permits remaining are kept, capped at the new
  // burst (`OnQuotaChange::KeepRemaining`), and it takes precedence over the resolver. A key with
  // its own quota keeps its state, and its room, until `clear_quota_at`: it is never dropped or
  // evicted. Returns an error naming the key if 255 distinct quotas besides the default are in
  // use, or if the key has no state and its shard has no room for it (the overflow policy
  // `EvictLeastRecentlyUsed` evicts a key to make room; the others do not).
  Result<void> set_quota_at(KeyView key, Quota quota, Instant now) requires kChangesQuota {
    const std::optional<std::uint8_t> tier = intern(quota);
    if (!tier) {
      return Error("KeyedLimiter::set_quota: key " + internal::KeyBytes<Key>::describe(key) +
                   ": at most 255 distinct quotas besides the default (got a 256th, " +
                   quota.to_string() + ")");
    }
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    const Lock lock(shard.flag);
    Slot* slot = shard.find(k);
    if (slot == nullptr) {
      if (!make_room(shard, internal::clamped_nanos(now))) {
        return Error("KeyedLimiter::set_quota: key " + internal::KeyBytes<Key>::describe(key) +
                     ": no room for it: its shard holds " + std::to_string(shard.capacity) +
                     " keys already, none of which can be dropped (max_keys " +
                     std::to_string(options_.max_keys) + ")");
      }
      slot = &shard.insert(k, *tier);
      slot->state = Impl::kFull;
    } else {
      slot->state = Impl::change_quota(slot->state, now, tiers_[slot->tier], tiers_[*tier],
                                       OnQuotaChange::KeepRemaining);
      slot->tier = *tier;
    }
    slot->flags |= Slot::kPinned;
    return {};
  }

  // Takes back `key`'s own quota at the clock's current instant; see `clear_quota_at`.
  void clear_quota(KeyView key) requires kChangesQuota { clear_quota_at(key, clock_.now()); }

  // Takes back `key`'s own quota at `now`: it gets the resolver's (or the default) quota again,
  // its permits remaining kept, and may be dropped and evicted again. Does nothing for a key
  // without its own quota.
  void clear_quota_at(KeyView key, Instant now) requires kChangesQuota {
    const internal::KeyLookup k = lookup(key);
    Shard& shard = shard_of(k.hash);
    {
      const Lock lock(shard.flag);
      const Slot* slot = shard.find(k);
      if (slot == nullptr || !slot->pinned()) return;
    }
    // The resolver is the caller's code: called outside the lock.
    const std::uint8_t tier = tier_for(key);
    const Lock lock(shard.flag);
    Slot* slot = shard.find(k);
    if (slot == nullptr || !slot->pinned()) return;  // Taken back meanwhile.
    slot->state = Impl::change_quota(slot->state, now, tiers_[slot->tier], tiers_[tier],
                                     OnQuotaChange::KeepRemaining);
    slot->tier = tier;
    slot->flags = static_cast<std::uint8_t>(slot->flags & ~Slot::kPinned);
    shard.full_from = std::min(shard.full_from, Impl::full_from(slot->state, tiers_[tier]));
  }

  // Drops the state of every key that is full at `now` (keys with their own quota excepted), as a
  // full shard would, and returns how many were dropped.
  std::size_t sweep(Instant now) {
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < shard_count(); ++i) {
      Shard& shard = shards_[i];
      const Lock lock(shard.flag);
      const std::size_t before = shard.held();
      shard.drop_full_buckets(internal::clamped_nanos(now), tiers_);
      dropped += before - shard.held();
    }
    return dropped;
  }

  // Returns the counters.
  KeyedLimiterStats stats() const {
    KeyedLimiterStats s;
    for (std::size_t i = 0; i < shard_count(); ++i) {
      const Shard& shard = shards_[i];
      s.keys += shard.keys.load(std::memory_order_relaxed);
      s.lossless_drops += shard.lossless_drops.load(std::memory_order_relaxed);
      s.forced_evictions += shard.forced_evictions.load(std::memory_order_relaxed);
      s.overflow_decisions += shard.overflow_decisions.load(std::memory_order_relaxed);
      s.too_many_keys += shard.too_many_keys.load(std::memory_order_relaxed);
      s.bytes += shard.bytes.load(std::memory_order_relaxed);
    }
    s.tier_overflows = tier_overflows_.load(std::memory_order_relaxed);
    return s;
  }

  // Returns the options the limiter was built with.
  const Options& options() const noexcept { return options_; }

  // Returns the clock.
  const C& clock() const noexcept { return clock_; }

 private:
  using Flag = internal::ShardFlag<T>;
  using Lock = internal::Locked<Flag>;
  using Shard = internal::Shard<Impl, Flag>;
  using Slot = typename Shard::SlotT;
  static constexpr std::size_t kMaxTiers = 256;

  internal::KeyLookup lookup(KeyView key) const noexcept {
    return internal::lookup_key(internal::KeyBytes<Key>::of(key), seed_);
  }
  std::size_t shard_count() const noexcept { return std::size_t{1} << shard_bits_; }
  Shard& shard_of(std::uint64_t hash) const noexcept { return shards_[hash & (shard_count() - 1)]; }

  Decision decide(Shard& shard, Slot& slot, const typename Impl::Params& params, Instant now,
                  std::uint64_t cost) noexcept(!kHeapState) {
    slot.flags |= Slot::kReferenced;
    // A log may grow or shrink as it decides: the shard's bytes follow it.
    if constexpr (kHeapState) internal::drop(shard.bytes, internal::state_bytes<Impl>(slot.state));
    const auto step = Impl::acquire(slot.state, now, cost, params);
    slot.state = step.state;
    if constexpr (kHeapState) internal::bump(shard.bytes, internal::state_bytes<Impl>(slot.state));
    return step.decision;
  }

  // Decides for a key without state in `shard` (locked) under `params`, keeping its state in a
  // new slot of `tier` if there is room.
  Decision create(Shard& shard, const internal::KeyLookup& k, std::uint8_t tier,
                  const typename Impl::Params& params, Instant now, std::uint64_t cost) {
    auto fresh = Impl::acquire(Impl::kFull, now, cost, params);
    const std::int64_t t = internal::clamped_nanos(now);
    if (Impl::is_full(fresh.state, t, params)) {  // Nothing to keep.
      internal::release_state<Impl>(fresh.state);
      return fresh.decision;
    }
    if (!make_room(shard, t)) {
      internal::release_state<Impl>(fresh.state);
      internal::bump(shard.overflow_decisions);
      return overflow(shard, now, cost, fresh.decision);
    }
    Slot& slot = shard.insert(k, tier);
    slot.state = fresh.state;
    internal::bump(shard.bytes, internal::state_bytes<Impl>(slot.state));
    shard.full_from = std::min(shard.full_from, Impl::full_from(fresh.state, params));
    return fresh.decision;
  }

  // Makes room in `shard` for one key at `t`, as the header describes; reports whether there is.
  bool make_room(Shard& shard, std::int64_t t) {
    if (shard.held() < shard.capacity) return true;
    shard.drop_full_buckets(t, tiers_);
    if (shard.held() < shard.capacity) return true;
    return options_.overflow == OverflowPolicy::EvictLeastRecentlyUsed && shard.evict_one();
  }

  // The decision for a new key when its shard has no room.
  Decision overflow(Shard& shard, Instant now, std::uint64_t cost, const Decision& fresh) {
    switch (options_.overflow) {
      case OverflowPolicy::AdmitUntracked:
        return fresh;
      case OverflowPolicy::SharedOverflow: {
        const Lock lock(overflow_flag_);
        const auto step = Impl::acquire(overflow_state_, now, cost, tiers_[0]);
        overflow_state_ = step.state;
        return step.decision;
      }
      case OverflowPolicy::RejectNewKeys:
      case OverflowPolicy::EvictLeastRecentlyUsed:  // Every key in the shard has its own quota.
        break;
    }
    // Until the earliest droppable key's bucket is full again: never, if there is none.
    internal::bump(shard.too_many_keys);
    const std::int64_t t = internal::clamped_nanos(now);
    const Nanos wait =
        shard.full_from == INT64_MAX ? kNever : internal::wait_until(shard.full_from, t);
    return Decision(Verdict::TooManyKeys, fresh.limit(), 0, 1, wait, Impl::window(tiers_[0]));
  }

  // Returns the quota the resolver gives `key` (or the default), as a key created now would get
  // it: the default if it would be a tier too many.
  Quota resolve(KeyView key) const {
    const std::optional<Quota> quota = resolver_quota(key);
    if (!quota) return options_.default_quota;
    if (!find_tier(*quota) && tier_count_.load(std::memory_order_acquire) >= kMaxTiers) {
      return options_.default_quota;
    }
    return *quota;
  }

  // The tier of a key whose state is about to be created, from the resolver.
  std::uint8_t tier_for(KeyView key) {
    const std::optional<Quota> quota = resolver_quota(key);
    if (!quota) return 0;
    if (const std::optional<std::uint8_t> tier = intern(*quota)) return *tier;
    tier_overflows_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }

  // Returns the quota the resolver chooses for `key`, or nothing for the default.
  std::optional<Quota> resolver_quota(KeyView key) const {
    if (!options_.resolver) return std::nullopt;
    return options_.resolver(key);
  }

  // Returns the tier of `quota` if it has one. Lock-free: tiers are only ever added, each
  // written before the count that publishes it.
  std::optional<std::uint8_t> find_tier(const Quota& quota) const noexcept {
    const std::size_t n = tier_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
      if (*tier_quotas_[i] == quota) return static_cast<std::uint8_t>(i);
    }
    return std::nullopt;
  }

  // Returns the tier of `quota`, adding it if there is room.
  std::optional<std::uint8_t> intern(const Quota& quota) {
    if (const std::optional<std::uint8_t> tier = find_tier(quota)) return tier;
    const std::lock_guard<std::mutex> lock(tiers_mu_);
    if (const std::optional<std::uint8_t> tier = find_tier(quota)) return tier;  // Raced in.
    const std::size_t n = tier_count_.load(std::memory_order_relaxed);
    if (n >= kMaxTiers) return std::nullopt;
    tiers_[n] = Impl::params(quota);
    tier_quotas_[n] = quota;
    tier_count_.store(n + 1, std::memory_order_release);
    return static_cast<std::uint8_t>(n);
  }

  const Options options_;
  [[no_unique_address]] const C clock_;
  const std::uint64_t seed_ =
      options_.hash_seed != 0
          ? options_.hash_seed
          : std::random_device{}() * 0x9e3779b97f4a7c15ULL ^ std::random_device{}();
  unsigned shard_bits_ = 0;
  std::unique_ptr<Shard[]> shards_;
  // Tier i's parameters and quota, written once under `tiers_mu_` before `tier_count_` > i.
  typename Shard::Tiers tiers_{};
  std::array<std::optional<Quota>, kMaxTiers> tier_quotas_{};
  std::atomic<std::size_t> tier_count_{1};
  std::mutex tiers_mu_;
  // The one state all overflowing keys share under OverflowPolicy::SharedOverflow.
  Flag overflow_flag_;
  typename Impl::State overflow_state_ = Impl::kFull;  // Guarded by overflow_flag_.
  std::atomic<std::uint64_t> tier_overflows_{0};
};

}  // namespace floodgate
