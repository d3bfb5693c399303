// The storage of a `KeyedLimiter`: shards of flat open-addressing tables (linear probing,
// backward-shift deletion, at most 3/4 full) of 32-byte slots. Not part of the public API;
// docs/design.md has the layout and the reasons for it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#define FLOODGATE_KEYED_HAS_MMAP 1
#else
#define FLOODGATE_KEYED_HAS_MMAP 0
#endif

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/concurrency.h"
#include "floodgate/core/time.h"
#include "floodgate/keyed/internal/key_hash.h"

namespace floodgate::internal {

// What a table needs of a rule beyond deciding: a state on the heap (the sliding log's) is
// released and counted in bytes; any other state is a plain value.
template <class Rule>
void release_state(typename Rule::State& state) noexcept {
  if constexpr (requires { Rule::release(state); }) Rule::release(state);
}
template <class Rule>
std::size_t state_bytes(const typename Rule::State& state) noexcept {
  if constexpr (requires { Rule::bytes(state); }) {
    return Rule::bytes(state);
  } else {
    return 0;
  }
}

template <class Rule>
Decision peek_state(const typename Rule::State& state, Instant now, std::uint64_t cost,
                    const typename Rule::Params& p) {
  if constexpr (requires { Rule::peek(state, now, cost, p); }) {
    return Rule::peek(state, now, cost, p);
  } else {
    return Rule::acquire(state, now, cost, p).decision;
  }
}

// Reports whether a rule's `is_full` and `full_from` ignore its parameters, so that a key may be
// decided under parameters given per call.
template <class Rule>
inline constexpr bool kSelfTimed = requires {
  requires Rule::kSelfTimed;
};

// One key's state: 32 bytes for a state of up to 8 bytes, else 64, aligned so that a slot never
// straddles two cache lines.
template <class State>
struct alignas(sizeof(State) <= 8 ? 32 : 64) Slot {
  static constexpr std::uint8_t kOccupied = 1;
  static constexpr std::uint8_t kReferenced = 2;  // The CLOCK bit: set on use, cleared by the hand.
  static constexpr std::uint8_t kPinned = 4;      // Has its own quota: never dropped or evicted.
  static constexpr std::uint8_t kOutOfLine = 0xff;

  State state;
  std::uint32_t tag;  // The key hash's upper half, which also picks the home slot.
  std::uint8_t flags;
  std::uint8_t tier;
  std::uint8_t inline_size;  // The key's size if it is inline, else kOutOfLine.
  struct HeapKey {
    char* data;
    std::size_t size;
  };
  union {
    std::uint64_t inline_words[2];  // `KeyLookup::words`.
    HeapKey heap;
  };

  bool occupied() const noexcept { return (flags & kOccupied) != 0; }
  bool pinned() const noexcept { return (flags & kPinned) != 0; }
};

// A table of empty slots. One of 64 KiB or more comes straight from the kernel and goes straight
// back when freed, so that a table left behind as its shard grows does not stay resident.
template <class S>
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
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;
  ~SlotTable() { release(data_, size_); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  S& operator[](std::size_t i) noexcept { return data_[i]; }
  const S& operator[](std::size_t i) const noexcept { return data_[i]; }
  S* begin() noexcept { return data_; }
  S* end() noexcept { return data_ + size_; }
  const S* begin() const noexcept { return data_; }
  const S* end() const noexcept { return data_ + size_; }

 private:
  static constexpr std::size_t kMappedBytes = std::size_t{64} << 10;

  static S* allocate(std::size_t size) {
#if FLOODGATE_KEYED_HAS_MMAP
    if (size * sizeof(S) >= kMappedBytes) {
      void* memory = ::mmap(nullptr, size * sizeof(S), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (memory == MAP_FAILED) throw std::bad_alloc();
      S* slots = static_cast<S*>(memory);
      std::uninitialized_value_construct_n(slots, size);
      return slots;
    }
#endif
    return new S[size]();
  }
  static void release(S* slots, std::size_t size) noexcept {
    if (slots == nullptr) return;
#if FLOODGATE_KEYED_HAS_MMAP
    if (size * sizeof(S) >= kMappedBytes) {
      ::munmap(slots, size * sizeof(S));
      return;
    }
#endif
    (void)size;
    delete[] slots;
  }

  S* data_ = nullptr;
  std::size_t size_ = 0;
};

// Counters written under a shard's lock and read without it.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void drop(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

// One shard: its lock, its table and its counters. Every member but the counters is guarded by
// `flag`; the rule `Rule` (internal::Gcra, internal::SlidingLog, ...) decides when a key's state
// is full, that is, can be dropped.
template <class Rule, class Flag>
struct alignas(kCacheLineSize) Shard {
  using SlotT = Slot<typename Rule::State>;
  using Tiers = std::array<typename Rule::Params, 256>;
  static_assert(sizeof(SlotT) == (sizeof(typename Rule::State) <= 8 ? 32 : 64));
  static_assert(std::is_trivially_copyable_v<SlotT> && std::is_trivially_destructible_v<SlotT>);

  Flag flag;
  std::size_t capacity = 0;  // The most keys this shard may hold.
  // No droppable key's bucket is full before this instant (`Rule::full_from`): a lower bound that
  // lets `drop_full_buckets` skip its scan when no key can be dropped.
  std::int64_t full_from = INT64_MAX;
  std::size_t hand = 0;    // The CLOCK hand.
  SlotTable<SlotT> slots;  // Empty, or at least 16 long; never all occupied.
  std::atomic<std::uint64_t> keys{0};
  std::atomic<std::uint64_t> lossless_drops{0};
  std::atomic<std::uint64_t> forced_evictions{0};
  std::atomic<std::uint64_t> overflow_decisions{0};
  std::atomic<std::uint64_t> too_many_keys{0};
  std::atomic<std::uint64_t> bytes{0};

  Shard() = default;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard() {
    for (SlotT& s : slots) {
      if (!s.occupied()) continue;
      if (s.inline_size == SlotT::kOutOfLine) delete[] s.heap.data;
      release_state<Rule>(s.state);
    }
  }

  // The slot a key with `tag` would occupy in a table of `size` slots: the tag scaled to
  // [0, size), so that tables need not be powers of two.
  static std::size_t home(std::uint32_t tag, std::size_t size) noexcept {
    return static_cast<std::size_t>((std::uint64_t{tag} * size) >> 32);
  }
  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots.size() ? 0 : i + 1; }

  // Returns the keys held (exact under the lock).
  std::size_t held() const noexcept {
    return static_cast<std::size_t>(keys.load(std::memory_order_relaxed));
  }

  SlotT* find(const KeyLookup& k) noexcept {
    if (slots.empty()) return nullptr;
    const std::uint32_t tag = k.tag();
    const std::size_t size = k.bytes.size();
    std::size_t i = home(tag, slots.size());
    if (size <= kInlineKey) {
      // Two word comparisons, no call to memcmp.
      for (;; i = next(i)) {
        SlotT& s = slots[i];
        if (!s.occupied()) return nullptr;
        if (s.tag == tag && s.inline_size == size && s.inline_words[0] == k.words[0] &&
            s.inline_words[1] == k.words[1]) {
          return &s;
        }
      }
    }
    for (;; i = next(i)) {
      SlotT& s = slots[i];
      if (!s.occupied()) return nullptr;
      if (s.tag == tag && s.inline_size == SlotT::kOutOfLine && s.heap.size == size &&
          std::memcmp(s.heap.data, k.bytes.data(), size) == 0) {
        return &s;
      }
    }
  }

  // Adds a key known to be absent (with `held() < capacity`), growing the table first if it would
  // be more than 3/4 full. A full table has capacity x 4/3 slots, plus one.
  SlotT& insert(const KeyLookup& k, std::uint8_t tier) {
    if ((held() + 1) * 4 > slots.size() * 3) {
      grow(std::min(std::max<std::size_t>(16, slots.size() * 2), capacity + capacity / 3 + 1));
    }
    std::size_t i = home(k.tag(), slots.size());
    while (slots[i].occupied()) i = next(i);
    SlotT& s = slots[i];
    s.tag = k.tag();
    s.flags = SlotT::kOccupied | SlotT::kReferenced;
    s.tier = tier;
    const std::string_view key = k.bytes;
    if (key.size() <= kInlineKey) {
      s.inline_size = static_cast<std::uint8_t>(key.size());
      s.inline_words[0] = k.words[0];
      s.inline_words[1] = k.words[1];
    } else {
      s.inline_size = SlotT::kOutOfLine;
      s.heap.data = new char[key.size()];
      s.heap.size = key.size();
      std::memcpy(s.heap.data, key.data(), key.size());
      bump(bytes, key.size());
    }
    bump(keys);
    return s;
  }

  void grow(std::size_t size) {
    // At the bound already, the table may pass 3/4 full; `held() < capacity` still leaves an
    // empty slot, which ends every probe.
    if (size <= slots.size()) return;
    SlotTable<SlotT> old = std::exchange(slots, SlotTable<SlotT>(size));
    for (const SlotT& s : old) {
      if (!s.occupied()) continue;
      std::size_t i = home(s.tag, size);
      while (slots[i].occupied()) i = next(i);
      slots[i] = s;
    }
    drop(bytes, old.size() * sizeof(SlotT));
    bump(bytes, slots.size() * sizeof(SlotT));
  }

  // Removes the key in slot `i`, shifting later keys of its probe run back so that no lookup
  // stops early.
  void erase(std::size_t i) noexcept {
    if (slots[i].inline_size == SlotT::kOutOfLine) {
      drop(bytes, slots[i].heap.size);
      delete[] slots[i].heap.data;
    }
    drop(bytes, state_bytes<Rule>(slots[i].state));
    release_state<Rule>(slots[i].state);
    std::size_t hole = i;
    for (std::size_t j = next(i); slots[j].occupied(); j = next(j)) {
      const std::size_t h = home(slots[j].tag, slots.size());
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      slots[hole] = slots[j];
      hole = j;
    }
    slots[hole].flags = 0;
    drop(keys, 1);
  }

  // Drops every unpinned key whose bucket is full at `t`, if the lower bound says any may be.
  void drop_full_buckets(std::int64_t t, const Tiers& tiers) noexcept {
    if (t < full_from) return;
    std::int64_t earliest = INT64_MAX;
    std::uint64_t dropped = 0;
    for (std::size_t i = 0; i < slots.size();) {
      const SlotT& s = slots[i];
      if (s.occupied() && !s.pinned()) {
        if (Rule::is_full(s.state, t, tiers[s.tier])) {
          erase(i);  // Re-examines slot i, which may now hold a shifted key.
          ++dropped;
          continue;
        }
        earliest = std::min(earliest, Rule::full_from(s.state, tiers[s.tier]));
      }
      ++i;
    }
    full_from = earliest;
    bump(lossless_drops, dropped);
  }

  // Evicts the first unpinned key the CLOCK hand finds unreferenced; returns false, evicting
  // nothing, if every key is pinned.
  bool evict_one() noexcept {
    // Two turns of the hand: the first may only clear referenced bits.
    for (std::size_t step = 0; step < 2 * slots.size(); ++step) {
      hand = hand + 1 >= slots.size() ? 0 : hand + 1;
      SlotT& s = slots[hand];
      if (!s.occupied() || s.pinned()) continue;
      if ((s.flags & SlotT::kReferenced) != 0) {
        s.flags = static_cast<std::uint8_t>(s.flags & ~SlotT::kReferenced);
        continue;
      }
      erase(hand);
      bump(forced_evictions);
      return true;
    }
    return false;
  }
};

}  // namespace floodgate::internal
