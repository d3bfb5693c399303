// `KeyedLimiter`: one limit per key (a user, an API key, an IP address) in bounded memory, with
// eviction that never resets a limited key unless told to.
//
// Keys are strings (looked up by `std::string_view`) or fixed-size values of at most 16 bytes
// whose bytes are their identity: integers, an IPv4 or IPv6 address as `std::array<std::uint8_t,
// N>`. The rule is GCRA (`GcraRule`, the default) or the token bucket (`TokenBucketRule`), whose
// state is one 8-byte word kept in the table; the limiters' own classes are not involved.
//
// Thread-safe. Keys are spread over shards by hash; each shard is a flat open-addressing table
// (linear probing, backward-shift deletion, at most 3/4 full) of 32-byte slots that hold the key's
// hash tag, its quota tier and its state word (GCRA's theoretical arrival time,
// floodgate/limiters/gcra_rule.h, or the instant the token bucket is empty), with keys of up to
// 16 bytes inline as two words. A call hashes the key, takes its shard's spin lock (one atomic
// exchange; the release is a plain store), probes, decides and stores the new state: one cache
// miss for the slot when the table is larger than the caches. Lookups of existing keys allocate
// nothing; a key longer than 16 bytes is copied to the heap when its state is created.
//
// Why an exclusive lock per shard rather than lock-free reads: an admission stores a new state
// anyway, and the compare-and-swap it would take costs the same fence as the lock's exchange;
// lock-free readers would also need slots that never move under them (no backward shift) and
// tables and heap keys freed only once no reader can hold them. Threads contend only when they
// hit one shard at one moment: with 64 shards and two threads, about one call in 64. Measured
// against a mutex-guarded std::unordered_map with 10^6 keys, two threads sharing the limiter get
// 5.7x to 11.9x its throughput (bench/keyed_benchmark.cc).
//
// Memory is bounded by `max_keys`. When a shard is full and a new key needs state:
//   1. keys whose state is indistinguishable from a fresh key's (the bucket is full at `now`; for
//      GCRA, a theoretical arrival time at or before `now`) are dropped. This loses nothing: every
//      later call at an instant no earlier than `now` decides as it would have with the key kept.
//   2. If none can be dropped, the `OverflowPolicy` decides (see there); only
//      `EvictLeastRecentlyUsed` can reset a limited key.
// A shard remembers the earliest instant at which one of its keys' buckets is full, so step 1 scans
// the shard only when some key can be dropped. `sweep(now)` drops every droppable key at once;
// nothing runs in the background.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#define FLOODGATE_KEYED_HAS_MMAP 1
#else
#define FLOODGATE_KEYED_HAS_MMAP 0
#endif

#include "floodgate/core/check.h"
#include "floodgate/core/clock.h"
#include "floodgate/core/concurrency.h"
#include "floodgate/core/decision.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/limiters/gcra_rule.h"
#include "floodgate/limiters/token_bucket_rule.h"

namespace floodgate {

// What a full `KeyedLimiter` does with a new key once no tracked key can be dropped losslessly.
enum class OverflowPolicy : std::uint8_t {
  // Fail closed: the new key's call is `Denied`, with `retry_after()` the time until some
  // tracked key's bucket is full again (and can be dropped). Nothing is reset. The default.
  RejectNewKeys,
  // Fail open: the call is decided as for a fresh key and admitted without keeping state, so an
  // untracked key is not limited until room frees up. Nothing tracked is reset.
  AdmitUntracked,
  // New keys share one overflow limiter under the default quota: together they get one key's
  // worth of capacity until room frees up. Nothing tracked is reset.
  SharedOverflow,
  // Evict an approximately least recently used key (a CLOCK sweep over the shard) to make room.
  // The only policy that can reset a limited key: an evicted key comes back with a full bucket.
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

// How a `KeyedLimiter` stores, hashes and names a key of type `Key`: as its bytes. Defined for
// `std::string` (looked up by `std::string_view`) and for fixed-size keys below; specialize it
// for another string-like key.
template <class Key>
struct KeyBytes;

template <>
struct KeyBytes<std::string> {
  using View = std::string_view;  // What lookups take.
  static std::string_view of(std::string_view key) noexcept { return key; }
  static std::string describe(std::string_view key) { return "\"" + std::string(key) + "\""; }
};

// A fixed-size key whose bytes are its identity (no padding, no pointers to follow): integers,
// enums, `std::array<std::uint8_t, 16>` for an IPv6 address. Stored inline, never on the heap.
template <class Key>
requires(std::is_trivially_copyable_v<Key>&& std::has_unique_object_representations_v<Key> &&
         sizeof(Key) <= 16) struct KeyBytes<Key> {
  using View = const Key&;
  static std::string_view of(const Key& key) noexcept {
    return {reinterpret_cast<const char*>(&key), sizeof(Key)};
  }
  static std::string describe(const Key& key) {
    if constexpr (std::is_integral_v<Key>) {
      return std::to_string(key);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string out = "0x";
      for (const char c : of(key)) {
        const auto b = static_cast<unsigned char>(c);
        out += kHex[b >> 4];
        out += kHex[b & 15];
      }
      return out;
    }
  }
};

// What `KeyedLimiter` needs of a rule: one state word of at most 8 bytes and pure functions over
// it (`GcraRule`, `TokenBucketRule`).
template <class R>
concept KeyedRule =
    sizeof(typename R::State) <= 8 && std::is_trivially_copyable_v<typename R::State>&& requires(
                                          typename R::State state, const typename R::Params& params,
                                          const Quota& quota, Instant now, std::int64_t t,
                                          std::uint64_t cost) {
  { R::params(quota) } -> std::same_as<typename R::Params>;
  { R::acquire(state, now, cost, params).decision } -> std::convertible_to<Decision>;
  { R::acquire(state, now, cost, params).state } -> std::convertible_to<typename R::State>;
  { R::is_full(state, t, params) } -> std::same_as<bool>;
  { R::full_from(state, params) } -> std::same_as<std::int64_t>;
  {R::change_quota(state, now, params, params, OnQuotaChange::KeepRemaining)};
  { R::window(params) } -> std::same_as<Nanos>;
};

// How a `KeyedLimiter` is built.
template <class Key = std::string>
struct KeyedLimiterOptions {
  Quota default_quota = Quota::per_second(10);
  // The most keys with state at once, exactly; memory is bounded by it: at most
  // 32 x 4/3 x max_keys bytes of slots once full (about 43 bytes a key), plus the bytes of keys
  // longer than 16 (see `KeyedLimiterStats::bytes`).
  std::size_t max_keys = 1'000'000;
  OverflowPolicy overflow = OverflowPolicy::RejectNewKeys;
  // Tiers: called once when a key's state is created, outside any lock, to choose its quota
  // (nothing: the default). Keys with an explicit `set_quota` skip it. At most 255 distinct
  // quotas besides the default; a key whose quota would be the 256th gets the default and is
  // counted in `KeyedLimiterStats::tier_overflows`.
  std::function<std::optional<Quota>(typename KeyBytes<Key>::View key)> resolver = nullptr;
  // Shards, rounded up to a power of two, and at most `max_keys`; 0 chooses: one per 4,096 keys
  // of room, at least 1 and at most 64. The room is split evenly, so one shard can be full
  // (and the overflow policy apply to its keys) while others still have room: with n keys of
  // room a shard, the busiest holds about sqrt(n) more keys than the average.
  std::size_t shards = 0;
  // The seed of the key hash; 0 (the default) draws a random one per limiter, so that keys
  // chosen to collide in one process do not collide in another. Fix it only to make a test's
  // layout reproducible: a seed an attacker knows lets them build long probe runs.
  std::uint64_t hash_seed = 0;
};

// Counters, readable while the limiter runs (each is exact; together they are not a snapshot).
struct KeyedLimiterStats {
  std::uint64_t keys = 0;                // Keys with state now.
  std::uint64_t lossless_drops = 0;      // Keys dropped because their bucket was full.
  std::uint64_t forced_evictions = 0;    // Keys evicted by EvictLeastRecentlyUsed.
  std::uint64_t overflow_decisions = 0;  // Calls decided by the overflow policy.
  std::uint64_t tier_overflows = 0;      // Keys given the default quota: too many distinct quotas.
  std::uint64_t bytes = 0;               // Slot tables and out-of-line keys.
};

// One limit per key: keys of type `Key`, each with its own state under `Rule`. `C` is the clock
// for the forms without `_at`.
//
//   floodgate::KeyedLimiter<> per_user{{.default_quota = floodgate::Quota::per_second(10),
//                                       .max_keys = 100'000}};
//   if (!per_user.try_acquire(user_id).allowed()) reply_429();
//
//   // Per IPv4 address, token buckets:
//   floodgate::KeyedLimiter<std::uint32_t, floodgate::TokenBucketRule> per_ip{{}};
template <class Key = std::string, KeyedRule Rule = GcraRule, Clock C = SteadyClock>
class KeyedLimiter {
 public:
  using Options = KeyedLimiterOptions<Key>;
  using KeyView = typename KeyBytes<Key>::View;
  using State = typename Rule::State;
  using Params = typename Rule::Params;

  // Creates an empty limiter. Aborts if `max_keys` is 0.
  explicit KeyedLimiter(Options options, C clock = C{})
      : options_(std::move(options)), clock_(std::move(clock)) {
    FLOODGATE_CHECK(options_.max_keys >= 1, "KeyedLimiter: max_keys must be at least 1");
    // No more shards than keys, so that every shard has room for one; the room adds up to
    // exactly `max_keys`.
    const std::size_t wanted = options_.shards != 0
                                   ? options_.shards
                                   : std::min<std::size_t>(64, options_.max_keys / 4096);
    const std::size_t shards = std::min(std::bit_ceil(std::max<std::size_t>(wanted, 1)),
                                        std::bit_floor(options_.max_keys));
    shard_bits_ = static_cast<unsigned>(std::countr_zero(shards));
    shards_ = std::make_unique<Shard[]>(shards);
    for (std::size_t i = 0; i < shards; ++i) {
      shards_[i].capacity = options_.max_keys / shards + (i < options_.max_keys % shards ? 1 : 0);
    }
    tiers_[0] = Rule::params(options_.default_quota);
    tier_quotas_.push_back(options_.default_quota);
  }

  KeyedLimiter(const KeyedLimiter&) = delete;
  KeyedLimiter& operator=(const KeyedLimiter&) = delete;

  ~KeyedLimiter() {
    for (std::size_t i = 0; i < shard_count(); ++i) shards_[i].release_all();
  }

  // Admits `cost` permits for `key` at the clock's current instant if they are available.
  Decision try_acquire(KeyView key, std::uint64_t cost = 1) {
    return try_acquire_at(key, clock_.now(), cost);
  }

  // Admits `cost` permits for `key` at `now` if they are available: the decision the rule's
  // limiter (`GcraLimiter`, `TokenBucketLimiter`) would make for the key's own quota, unless the
  // limiter is full (see `OverflowPolicy`).
  Decision try_acquire_at(KeyView key, Instant now, std::uint64_t cost = 1) {
    const Lookup k = lookup_of(KeyBytes<Key>::of(key));
    Shard& shard = shard_of(k.hash);
    {
      const SpinLock lock(shard.locked);
      if (Slot* slot = shard.find(k)) return decide(*slot, now, cost);
    }
    // A new key: choose its quota outside the lock (the resolver is the caller's code).
    const std::uint8_t tier = tier_for(key);
    const SpinLock lock(shard.locked);
    if (Slot* slot = shard.find(k)) return decide(*slot, now, cost);  // Raced in.
    const auto fresh = Rule::acquire(Rule::kFullState, now, cost, tiers_[tier]);
    const std::int64_t t = internal::clamped_nanos(now);
    if (Rule::is_full(fresh.state, t, tiers_[tier])) return fresh.decision;  // Nothing to keep.
    if (shard.held() >= shard.capacity) {
      shard.drop_full_buckets(t, tiers_);
      if (shard.held() >= shard.capacity) {
        if (options_.overflow != OverflowPolicy::EvictLeastRecentlyUsed) {
          bump(shard.overflow_decisions);
          return overflow(shard, now, cost, fresh.decision);
        }
        shard.evict_one();
      }
    }
    Slot& slot = shard.insert(k, tier);
    slot.state = fresh.state;
    shard.full_from = std::min(shard.full_from, Rule::full_from(fresh.state, tiers_[tier]));
    return fresh.decision;
  }

  // Reports what `try_acquire(key, cost)` would decide at the clock's current instant.
  Decision peek(KeyView key, std::uint64_t cost = 1) { return peek_at(key, clock_.now(), cost); }

  // Reports what `try_acquire_at(key, now, cost)` would decide, without consuming anything or
  // creating state.
  Decision peek_at(KeyView key, Instant now, std::uint64_t cost = 1) {
    const Lookup k = lookup_of(KeyBytes<Key>::of(key));
    Shard& shard = shard_of(k.hash);
    {
      const SpinLock lock(shard.locked);
      if (const Slot* slot = shard.find(k)) {
        return Rule::acquire(slot->state, now, cost, tiers_[slot->tier]).decision;
      }
    }
    return Rule::acquire(Rule::kFullState, now, cost, tiers_[tier_for(key)]).decision;
  }

  // Gives `key` its own quota from the clock's current instant; see `set_quota_at`.
  Result<Quota> set_quota(KeyView key, Quota quota) {
    return set_quota_at(key, quota, clock_.now());
  }

  // Gives `key` its own quota from `now` on, for its current state (carried as
  // `OnQuotaChange::KeepRemaining` does) and whenever its state is created again; it takes
  // precedence over the resolver. Returns an error naming the key if 255 distinct quotas besides
  // the default are already in use.
  Result<Quota> set_quota_at(KeyView key, Quota quota, Instant now) {
    const std::optional<std::uint8_t> tier = intern(quota);
    if (!tier) {
      return Error("KeyedLimiter::set_quota: key " + KeyBytes<Key>::describe(key) +
                   ": at most 255 distinct quotas besides the default (got a 256th, " +
                   quota.to_string() + ")");
    }
    const Lookup k = lookup_of(KeyBytes<Key>::of(key));
    {
      const std::lock_guard<std::mutex> lock(overrides_mu_);
      overrides_[std::string(k.bytes)] = *tier;
    }
    Shard& shard = shard_of(k.hash);
    const SpinLock lock(shard.locked);
    if (Slot* slot = shard.find(k)) {
      slot->state = Rule::change_quota(slot->state, now, tiers_[slot->tier], tiers_[*tier],
                                       OnQuotaChange::KeepRemaining);
      slot->tier = *tier;
      shard.full_from = std::min(shard.full_from, Rule::full_from(slot->state, tiers_[*tier]));
    }
    return quota;
  }

  // Drops the state of every key whose bucket is full at `now` (lossless; see the header) and
  // returns how many were dropped.
  std::size_t sweep(Instant now) {
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < shard_count(); ++i) {
      Shard& shard = shards_[i];
      const SpinLock lock(shard.locked);
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
  static constexpr std::size_t kInlineKey = 16;
  static constexpr std::size_t kMaxTiers = 256;
  using Tiers = std::array<Params, kMaxTiers>;

  // A key as the table compares it: its bytes, its hash, and, for a key of up to 16 bytes, its
  // bytes as two zero-padded words, the form in which a slot holds it inline.
  struct Lookup {
    std::string_view bytes;
    std::uint64_t hash;
    std::uint64_t words[2];
    // The hash's upper half: the shard takes the lower bits, the home slot this.
    std::uint32_t tag() const noexcept { return static_cast<std::uint32_t>(hash >> 32); }
  };

  // One key's state: 32 bytes, aligned so that a slot never straddles two cache lines.
  struct alignas(32) Slot {
    State state;
    std::uint32_t tag;  // The key hash's upper half, which also picks the home slot.
    std::uint8_t occupied;
    std::uint8_t tier;
    std::uint8_t referenced;   // The CLOCK bit: set on use, cleared by the eviction hand.
    std::uint8_t inline_size;  // The key's size if it is inline, else kOutOfLine.
    union {
      std::uint64_t inline_words[2];  // `Lookup::words`.
      struct {
        char* data;
        std::size_t size;
      } heap;
    };
  };
  static_assert(sizeof(Slot) == 32);
  static_assert(std::is_trivially_copyable_v<Slot> && std::is_trivially_destructible_v<Slot>);
  static constexpr std::uint8_t kOutOfLine = 0xff;

  // A table of empty slots. One of 64 KiB or more comes straight from the kernel and goes
  // straight back when freed: a table left behind as its shard grows is returned at once,
  // where malloc keeps such blocks for later allocations (measured: 49 bytes a key instead of
  // 43 resident for a second limiter of 10^6 keys in one process).
  class SlotTable {
   public:
    SlotTable() = default;
    explicit SlotTable(std::size_t size) : data_(allocate(size)), size_(size) {}
    SlotTable(SlotTable&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    SlotTable& operator=(SlotTable&& other) noexcept {
      std::swap(data_, other.data_);
      std::swap(size_, other.size_);
      return *this;
    }
    ~SlotTable() { release(data_, size_); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    Slot& operator[](std::size_t i) noexcept { return data_[i]; }
    const Slot& operator[](std::size_t i) const noexcept { return data_[i]; }
    Slot* begin() noexcept { return data_; }
    Slot* end() noexcept { return data_ + size_; }

   private:
    static constexpr std::size_t kMappedBytes = std::size_t{64} << 10;

    static Slot* allocate(std::size_t size) {
#if FLOODGATE_KEYED_HAS_MMAP
      if (size * sizeof(Slot) >= kMappedBytes) {
        void* memory = ::mmap(nullptr, size * sizeof(Slot), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) throw std::bad_alloc();
        Slot* slots = static_cast<Slot*>(memory);
        std::uninitialized_value_construct_n(slots, size);
        return slots;
      }
#endif
      return new Slot[size]();
    }
    static void release(Slot* slots, std::size_t size) noexcept {
      if (slots == nullptr) return;
#if FLOODGATE_KEYED_HAS_MMAP
      if (size * sizeof(Slot) >= kMappedBytes) {
        ::munmap(slots, size * sizeof(Slot));
        return;
      }
#endif
      (void)size;
      delete[] slots;
    }

    Slot* data_ = nullptr;
    std::size_t size_ = 0;
  };

  struct alignas(kCacheLineSize) Shard {
    std::atomic<bool> locked{false};
    std::size_t capacity = 0;  // The most keys this shard may hold.
    // No held key's bucket is full before this instant (`Rule::full_from`): a lower bound that
    // lets `drop_full_buckets` skip its scan when no key can be dropped.
    std::int64_t full_from = INT64_MAX;
    std::size_t hand = 0;  // The CLOCK hand.
    SlotTable slots;       // Empty, or at least 16 long; never all occupied.
    // Counters, written under the lock, read without it.
    std::atomic<std::uint64_t> keys{0};  // Keys held: written under the lock, read anywhere.
    std::atomic<std::uint64_t> lossless_drops{0};
    std::atomic<std::uint64_t> forced_evictions{0};
    std::atomic<std::uint64_t> overflow_decisions{0};
    std::atomic<std::uint64_t> bytes{0};

    // The slot a key with `tag` would occupy in a table of `size` slots: the tag scaled to
    // [0, size), so that tables need not be powers of two.
    static std::size_t home(std::uint32_t tag, std::size_t size) noexcept {
      return static_cast<std::size_t>((std::uint64_t{tag} * size) >> 32);
    }
    std::size_t next(std::size_t i) const noexcept { return i + 1 == slots.size() ? 0 : i + 1; }

    // Returns the keys held (under the lock, exact).
    std::size_t held() const noexcept {
      return static_cast<std::size_t>(keys.load(std::memory_order_relaxed));
    }

    Slot* find(const Lookup& k) noexcept {
      if (slots.empty()) return nullptr;
      const std::uint32_t tag = k.tag();
      const std::size_t size = k.bytes.size();
      std::size_t i = home(tag, slots.size());
      if (size <= kInlineKey) {
        // Two word comparisons, no call to memcmp.
        for (;; i = next(i)) {
          Slot& s = slots[i];
          if (!s.occupied) return nullptr;
          if (s.tag == tag && s.inline_size == size && s.inline_words[0] == k.words[0] &&
              s.inline_words[1] == k.words[1]) {
            return &s;
          }
        }
      }
      for (;; i = next(i)) {
        Slot& s = slots[i];
        if (!s.occupied) return nullptr;
        if (s.tag == tag && s.inline_size == kOutOfLine && s.heap.size == size &&
            std::memcmp(s.heap.data, k.bytes.data(), size) == 0) {
          return &s;
        }
      }
    }

    // Adds a key known to be absent (with `held() < capacity`), growing the table first if it
    // would be more than 3/4 full. A full table has capacity x 4/3 slots, plus one.
    Slot& insert(const Lookup& k, std::uint8_t tier) {
      if ((held() + 1) * 4 > slots.size() * 3) {
        grow(std::min(std::max<std::size_t>(16, slots.size() * 2), capacity + capacity / 3 + 1));
      }
      std::size_t i = home(k.tag(), slots.size());
      while (slots[i].occupied) i = next(i);
      Slot& s = slots[i];
      s.tag = k.tag();
      s.occupied = 1;
      s.tier = tier;
      s.referenced = 1;
      const std::string_view key = k.bytes;
      if (key.size() <= kInlineKey) {
        s.inline_size = static_cast<std::uint8_t>(key.size());
        s.inline_words[0] = k.words[0];
        s.inline_words[1] = k.words[1];
      } else {
        s.inline_size = kOutOfLine;
        s.heap.data = new char[key.size()];
        s.heap.size = key.size();
        std::memcpy(s.heap.data, key.data(), key.size());
        add(bytes, key.size());
      }
      bump(keys);
      return s;
    }

    void grow(std::size_t size) {
      // At the bound already, the table may pass 3/4 full; `held() < capacity` still leaves an
      // empty slot, which ends every probe.
      if (size <= slots.size()) return;
      SlotTable old = std::exchange(slots, SlotTable(size));
      for (const Slot& s : old) {
        if (!s.occupied) continue;
        std::size_t i = home(s.tag, size);
        while (slots[i].occupied) i = next(i);
        slots[i] = s;
      }
      sub(bytes, old.size() * sizeof(Slot));
      add(bytes, slots.size() * sizeof(Slot));
    }

    // Removes the key in slot `i`, shifting later keys of its probe run back so that no lookup
    // stops early.
    void erase(std::size_t i) noexcept {
      if (slots[i].inline_size == kOutOfLine) {
        sub(bytes, slots[i].heap.size);
        delete[] slots[i].heap.data;
      }
      std::size_t hole = i;
      for (std::size_t j = next(i); slots[j].occupied; j = next(j)) {
        const std::size_t h = home(slots[j].tag, slots.size());
        // Move j into the hole unless its home lies cyclically in (hole, j].
        const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (stays) continue;
        slots[hole] = slots[j];
        hole = j;
      }
      slots[hole].occupied = 0;
      sub(keys, 1);
    }

    // Drops every key whose bucket is full at `t`, if the lower bound says any may be.
    void drop_full_buckets(std::int64_t t, const Tiers& tiers) noexcept {
      if (t < full_from) return;
      std::int64_t earliest = INT64_MAX;
      std::uint64_t dropped = 0;
      for (std::size_t i = 0; i < slots.size();) {
        const Slot& s = slots[i];
        if (s.occupied && Rule::is_full(s.state, t, tiers[s.tier])) {
          erase(i);  // Re-examines slot i, which may now hold a shifted key.
          ++dropped;
          continue;
        }
        if (s.occupied) earliest = std::min(earliest, Rule::full_from(s.state, tiers[s.tier]));
        ++i;
      }
      full_from = earliest;
      add(lossless_drops, dropped);
    }

    // Evicts the first key the CLOCK hand finds unreferenced.
    void evict_one() noexcept {
      while (true) {
        hand = hand + 1 >= slots.size() ? 0 : hand + 1;
        Slot& s = slots[hand];
        if (!s.occupied) continue;
        if (s.referenced) {
          s.referenced = 0;
          continue;
        }
        erase(hand);
        bump(forced_evictions);
        return;
      }
    }

    void release_all() noexcept {
      for (Slot& s : slots) {
        if (s.occupied && s.inline_size == kOutOfLine) delete[] s.heap.data;
      }
    }
  };

  // A spin lock on one flag: an exchange to take it, a store to give it back; yields while
  // another thread holds it. While the process has never started a second thread there is no
  // one to exclude, and the exchange (a full fence, which keeps one call's cache miss from
  // overlapping the next's) is skipped, as `internal::commit_word` skips its compare-and-swap.
  class SpinLock {
   public:
    explicit SpinLock(std::atomic<bool>& flag) noexcept
        : flag_(flag), held_(!internal::is_single_threaded()) {
      if (!held_) return;
      while (flag_.exchange(true, std::memory_order_acquire)) {
        while (flag_.load(std::memory_order_relaxed)) std::this_thread::yield();
      }
    }
    ~SpinLock() {
      if (held_) flag_.store(false, std::memory_order_release);
    }
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

   private:
    std::atomic<bool>& flag_;
    const bool held_;
  };

  static void bump(std::atomic<std::uint64_t>& counter) noexcept { add(counter, 1); }
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void sub(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }

  // Little-endian loads of 8 and 4 bytes (the same words on any machine).
  static std::uint64_t load64(const char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    return w;
  }
  static std::uint64_t load32(const char* p) noexcept {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap32(w);
    return w;
  }
  static std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finalizer.
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  }

  // Returns the lookup of `key`: its words and its hash, seeded per limiter (at random unless
  // the options fix it), so that keys chosen to collide in one process do not collide in
  // another: an attacker who picks keys cannot build long probe runs (hash flooding), as they
  // could against an unseeded hash such as std::hash. A key of up to 16 bytes is read with at
  // most four loads, overlapping where it is shorter than they are, and never byte by byte;
  // it is then hashed in two rounds.
  Lookup lookup_of(std::string_view key) const noexcept {
    const char* p = key.data();
    const std::size_t n = key.size();
    Lookup k{key, 0, {0, 0}};
    if (n <= kInlineKey) {
      if (n >= 8) {
        k.words[0] = load64(p);
        k.words[1] = n > 8 ? load64(p + n - 8) >> (8 * (16 - n)) : 0;  // Bytes 8 to n.
      } else if (n >= 4) {
        k.words[0] = load32(p) | load32(p + n - 4) << (8 * (n - 4));
      } else if (n > 0) {
        const auto byte = [&](std::size_t i) {
          return std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
        };
        k.words[0] = byte(0) | byte(n / 2) | byte(n - 1);
      }
      k.hash = mix(mix(seed_ ^ k.words[0]) ^ k.words[1] ^ n);
      return k;
    }
    std::uint64_t h = seed_ ^ n;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) h = mix(h ^ load64(p + i));
    if (i < n) h = mix(h ^ load64(p + n - 8));  // The last bytes, overlapping: n > 16.
    k.hash = h;
    return k;
  }

  std::size_t shard_count() const noexcept { return std::size_t{1} << shard_bits_; }
  Shard& shard_of(std::uint64_t hash) const noexcept { return shards_[hash & (shard_count() - 1)]; }

  Decision decide(Slot& slot, Instant now, std::uint64_t cost) noexcept {
    slot.referenced = 1;
    const auto step = Rule::acquire(slot.state, now, cost, tiers_[slot.tier]);
    slot.state = step.state;
    return step.decision;
  }

  // The decision for a new key when the shard is full and nothing could be dropped.
  Decision overflow(Shard& shard, Instant now, std::uint64_t cost, const Decision& fresh) {
    switch (options_.overflow) {
      case OverflowPolicy::AdmitUntracked:
        return fresh;
      case OverflowPolicy::SharedOverflow: {
        const SpinLock lock(overflow_locked_);
        const auto step = Rule::acquire(overflow_state_, now, cost, tiers_[0]);
        overflow_state_ = step.state;
        return step.decision;
      }
      case OverflowPolicy::RejectNewKeys:
      case OverflowPolicy::EvictLeastRecentlyUsed: {
        // Until the earliest tracked bucket is full again, when it can be dropped.
        const std::int64_t t = internal::clamped_nanos(now);
        const Nanos wait{shard.full_from > t ? shard.full_from - t : 0};
        return Decision(Verdict::Denied, fresh.limit(), 0, 1, std::max(wait, Nanos{1}),
                        Rule::window(tiers_[0]));
      }
    }
    return fresh;
  }

  // The tier of a key whose state is about to be created.
  std::uint8_t tier_for(KeyView key) {
    {
      const std::lock_guard<std::mutex> lock(overrides_mu_);
      if (!overrides_.empty()) {
        const auto it = overrides_.find(std::string(KeyBytes<Key>::of(key)));
        if (it != overrides_.end()) return it->second;
      }
    }
    if (!options_.resolver) return 0;
    const std::optional<Quota> quota = options_.resolver(key);
    if (!quota) return 0;
    const std::optional<std::uint8_t> tier = intern(*quota);
    if (tier) return *tier;
    tier_overflows_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }

  // Returns the tier of `quota`, adding it if there is room.
  std::optional<std::uint8_t> intern(const Quota& quota) {
    const std::lock_guard<std::mutex> lock(tiers_mu_);
    for (std::size_t i = 0; i < tier_quotas_.size(); ++i) {
      if (tier_quotas_[i] == quota) return static_cast<std::uint8_t>(i);
    }
    if (tier_quotas_.size() >= kMaxTiers) return std::nullopt;
    // Written before any slot refers to it; a slot's tier is read under its shard's lock, taken
    // after this by the thread that stored the tier.
    tiers_[tier_quotas_.size()] = Rule::params(quota);
    tier_quotas_.push_back(quota);
    return static_cast<std::uint8_t>(tier_quotas_.size() - 1);
  }

  const Options options_;
  [[no_unique_address]] const C clock_;
  const std::uint64_t seed_ =
      options_.hash_seed != 0
          ? options_.hash_seed
          : std::random_device{}() * 0x9e3779b97f4a7c15ULL ^ std::random_device{}();
  unsigned shard_bits_ = 0;
  std::unique_ptr<Shard[]> shards_;
  Tiers tiers_{};
  // The one state all overflowing keys share under OverflowPolicy::SharedOverflow.
  std::atomic<bool> overflow_locked_{false};
  State overflow_state_ = Rule::kFullState;  // Guarded by overflow_locked_.
  std::mutex tiers_mu_;
  std::vector<Quota> tier_quotas_;  // Guarded by tiers_mu_.
  std::mutex overrides_mu_;
  // Keys' bytes to their tiers. Guarded by overrides_mu_.
  std::unordered_map<std::string, std::uint8_t> overrides_;
  std::atomic<std::uint64_t> tier_overflows_{0};
};

}  // namespace floodgate
