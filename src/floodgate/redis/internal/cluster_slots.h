// Redis Cluster's key space: the slot of a key (CRC16 of the key or of its hash tag, modulo
// 16384), the `CLUSTER SLOTS` reply as ranges of slots and their masters, and the `MOVED` and
// `ASK` redirections. Not part of the public API. Free functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/connection.h"
#include "floodgate/redis/internal/resp.h"

namespace floodgate::internal {

inline constexpr std::uint16_t kClusterSlots = 16384;

// Returns the slot of `key`: CRC16 (XMODEM) of the key modulo 16384, or of its hash tag, the
// bytes between the first `{` and the first `}` after it when there are any.
std::uint16_t key_slot(std::string_view key) noexcept;

// Slots [first, last] and the master that serves them.
struct SlotRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  Endpoint master;
};

// Reads a `CLUSTER SLOTS` reply. A master reported without an address (an empty host, as a
// node may report itself) is at `asked_host`, the host the command was sent to. Returns an
// error naming what is malformed.
Result<std::vector<SlotRange>> parse_cluster_slots(const Reply& reply, std::string_view asked_host);

// A `MOVED slot host:port` or `ASK slot host:port` error reply.
struct Redirect {
  bool moved = false;  // MOVED: the slot has a new owner. ASK: this key only, this once.
  std::uint16_t slot = 0;
  Endpoint to;
};

// Returns the redirection an error reply asks for, or nothing if it is not one. An empty host
// means the host that replied, `asked_host`.
std::optional<Redirect> parse_redirect(std::string_view error, std::string_view asked_host);

}  // namespace floodgate::internal
