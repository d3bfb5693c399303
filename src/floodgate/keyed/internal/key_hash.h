// How a `KeyedLimiter` reads, hashes and names keys: as their bytes. Not part of the public API.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace floodgate::internal {

// How keys of type `Key` are viewed as bytes and named in messages. Defined for `std::string`
// (looked up by `std::string_view`) and for fixed-size keys whose bytes are their identity.
template <class Key>
struct KeyBytes;

template <>
struct KeyBytes<std::string> {
  using View = std::string_view;  // What lookups take.
  static std::string_view of(std::string_view key) noexcept { return key; }
  static std::string describe(std::string_view key) { return "\"" + std::string(key) + "\""; }
};

// A fixed-size key whose bytes are its identity (no padding, nothing to follow): integers, enums,
// `std::array<std::uint8_t, 16>` for an IPv6 address. Stored inline, never on the heap.
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

// Keys of up to this many bytes are stored inline, as two words.
inline constexpr std::size_t kInlineKey = 16;

// A key as a table compares it: its bytes, its hash, and, for a key of up to 16 bytes, its
// bytes as two zero-padded words, the form in which a slot holds it inline.
struct KeyLookup {
  std::string_view bytes;
  std::uint64_t hash;
  std::uint64_t words[2];
  // The hash's upper half: the shard takes the lower bits, the home slot this.
  std::uint32_t tag() const noexcept { return static_cast<std::uint32_t>(hash >> 32); }
};

// Little-endian loads of 8 and 4 bytes (the same words on any machine).
inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}
inline std::uint64_t load32(const char* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap32(w);
  return w;
}

// splitmix64's finalizer.
inline std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Returns the lookup of `key` under hash seed `seed`. A seed chosen at random per limiter means
// keys picked to collide in one process do not collide in another, so an attacker cannot build
// long probe runs (hash flooding) as against an unseeded hash such as std::hash. A key of up to
// 16 bytes is read with at most four loads, overlapping where it is shorter, never byte by
// byte, and hashed in two rounds.
inline KeyLookup lookup_key(std::string_view key, std::uint64_t seed) noexcept {
  const char* p = key.data();
  const std::size_t n = key.size();
  KeyLookup k{key, 0, {0, 0}};
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
    k.hash = mix(mix(seed ^ k.words[0]) ^ k.words[1] ^ n);
    return k;
  }
  std::uint64_t h = seed ^ n;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) h = mix(h ^ load64(p + i));
  if (i < n) h = mix(h ^ load64(p + n - 8));  // The last bytes, overlapping: n > 16.
  k.hash = h;
  return k;
}

}  // namespace floodgate::internal
